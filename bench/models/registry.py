"""Trainable models by name: what `bench train --policy NAME` trains and the `trained` policy adapter
(bench/policies/trained.py) serves, through one training loop and one checkpoint format.

A model module calls `register_model(ModelEntry(...))` when imported; modules listed in MODEL_MODULES
(and the entry-point group `dit4dit_bench.models`) are imported on first use. A model implements
`TrainableModel`; its config is a dataclass with `to_dict`, `from_dict` (ignoring unknown keys, so old
checkpoints load) and `validate`, and the fields every model reads: `cameras`, `image_size`, `text`,
`text_max_tokens`, `text_embeddings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from bench.core.registry import Registry, import_plugins

MODEL_MODULES = ["bench.models.dit4dit", "baselines.groot", "baselines.flare", "baselines.pi05"]


class TrainableModel(Protocol):
    cfg: Any
    normalizer: Any  # bench.models.common.Normalizer: set from the demos' statistics before training

    def loss(self, batch: dict, text) -> dict:
        """Losses of a batch of windows: "loss" is what is minimised, every other entry is logged."""

    def __call__(self, batch: dict, text) -> dict:
        """An nn.Module whose forward is `loss` (the loop calls the module, as multi-GPU wrappers need)."""

    def predict(self, images: dict, state, text, generator=None, steps: int | None = None):
        """Action chunks (B, chunk, action_dim) in env units from current frames {cam: (B, H, W, 3) uint8}."""

    def param_groups(self) -> list[dict]:
        """[{"name": ..., "params": [...]}, ...]: learning rates are set per group name."""

    def window_spec(self):
        """The training windows it learns from (bench.demos.dataset.WindowSpec)."""

    @property
    def chunk_shape(self) -> tuple[int, int]:
        """(chunk length, action dim) of what `predict` returns."""

    # optional: after_step() is called after every optimizer step (e.g. to move an EMA copy)
    # optional: TRAINING_ONLY = ("module", ...): submodules inference never runs; `bench export` leaves them
    #   out, and loading such a checkpoint calls restore_training_only() to rebuild them


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type
    configs: dict[str, Callable[[], Any]]  # named configs ("tiny", "full", ...)
    build: Callable[[Any], TrainableModel]
    help: str


MODELS: Registry[ModelEntry] = Registry("model")
_loaded = False


def register_model(entry: ModelEntry) -> None:
    MODELS.add(entry.name, entry)


def load_models() -> Registry[ModelEntry]:
    global _loaded
    if not _loaded:
        _loaded = True
        import_plugins(MODEL_MODULES, "dit4dit_bench.models")
    return MODELS


def model_config(model: str, config: str, **overrides):
    """A registered model's named config with dotted-key overrides; errors name the valid choices."""
    from bench.models.common import override

    entry = load_models().get(model)
    if config not in entry.configs:
        raise ValueError(f"unknown {model} config {config!r}; valid: {', '.join(entry.configs)}")
    return entry.config_cls.from_dict(override(entry.configs[config]().to_dict(), overrides))


def entry_of_config(cfg) -> ModelEntry:
    """The registered model a config object belongs to."""
    for name in load_models():
        entry = MODELS.get(name)
        if type(cfg) is entry.config_cls:  # exact: one config class may extend another
            return entry
    raise ValueError(f"{type(cfg).__name__} is the config of no registered model ({', '.join(MODELS)})")


def parameter_count(model: str, config: str) -> int:
    """Trainable parameters of a registered model's named config, built on the meta device (no memory, so
    the 2 B-parameter configs count too)."""
    import copy

    return trainable_count(model, copy.deepcopy(model_config(model, config)))


def trainable_count(model: str, cfg) -> int:
    """Trainable parameters of registered `model` built from config object `cfg` (on the meta device)."""
    import torch

    from bench.models.common import count_parameters

    if hasattr(cfg, "pretrained"):
        cfg.pretrained = None  # count the architecture; weights are not loaded for a count
    with torch.device("meta"):
        return count_parameters(load_models().get(model).build(cfg), trainable=True)
