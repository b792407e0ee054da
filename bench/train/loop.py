"""One training loop for every registered model (bench/models/registry.py), one checkpoint format.

Every step named: AdamW with a learning rate per parameter group the model declares
(`lr`, or `group_lr[name]`), linear warmup then cosine decay to `min_lr`, gradient clipping,
losses logged to `losses.csv` (and plotted to `losses.png`), checkpoints as
safetensors + JSON config + normalisation statistics, and a resumable train state.
It runs through accelerate, so `accelerate launch -m bench.cli train ...` uses
several GPUs with no change; here it runs on the CPU.

Batches, noise, timesteps and dropout are seeded by (seed, step): a resumed run
repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Sampler, default_collate

from bench.demos.dataset import LiberoDemoDataset
from bench.demos.libero_hdf5 import file_suite
from bench.models.common import (ATTENTION, check_choice, compile_blocks, count_parameters, precision_context,
                                 set_attention)
from bench.models.registry import entry_of_config, load_models
from bench.models.text import TextCache, make_text_encoder
from bench.sim.suites import LIBERO_ACTION_CONVENTION, LIBERO_STATE_LAYOUT

CHECKPOINT_FILES = ("model.safetensors", "config.json", "stats.json", "text_cache.safetensors")


PRECISIONS = ("fp32", "bf16")
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb"}  # --log-with name -> the package it needs


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-4  # peak learning rate of every parameter group...
    group_lr: dict[str, float] = field(default_factory=dict)  # ...unless named here (dit4dit: action, video)
    min_lr: float = 5e-7
    warmup: int = 100
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    checkpoint_every: int = 250
    log_every: int = 10
    seed: int = 0
    num_workers: int = 0
    # "bf16": forward passes under bf16 autocast, weights and optimizer state stay fp32. On this machine's
    # CPU (avx512_bf16) a tiny step is 1.5x faster (results/perf/policy_tiny.json); without bf16 units, slower.
    precision: str = "fp32"
    # torch.compile each model's repeated blocks (bench.models.common.compile_blocks): fuses the many small
    # elementwise ops around the matmuls; the same function, to float noise (tests/test_train_speed.py)
    compile: bool = False
    attention: str = "default"  # the video DiT's attention kernel (bench.models.common.ATTENTION)
    frame_cache: bool = False  # read frames from a decoded, memory-mapped cache (Hdf5Source.use_frame_cache)
    demo_fraction: float = 1.0  # train on this fraction of each task's demos (bench.demos.dataset.fraction_of_demos)
    balance: str = "windows"  # sample every window alike, or every task alike ("tasks"; LiberoDemoDataset.balance)
    fraction_seed: int = 0  # which demos a fraction keeps: fixed, so every model of a study sees the same ones
    keep_checkpoints: tuple[int, ...] = ()  # steps whose checkpoint is also kept as checkpoint_step<N>
    init_from: str | None = None  # a checkpoint whose `init_modules` weights start this training (pretraining)
    init_modules: tuple[str, ...] = ("video_dit",)
    log_with: str | None = None  # also log to an experiment tracker (TRACKERS), offline, under <out>/trackers


class StepBatches(Sampler):
    """Batch indices for steps start..steps-1, each drawn from a generator seeded by (seed, step); uniform over
    the windows, or by `weights` (with replacement)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, steps: int, weights=None):
        self.n, self.batch_size, self.seed, self.start, self.steps = n, batch_size, seed, start, steps
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
            if self.weights is None:
                yield torch.randint(self.n, (self.batch_size,), generator=g).tolist()
            else:
                yield torch.multinomial(self.weights, self.batch_size, replacement=True, generator=g).tolist()


def lr_factor(step: int, cfg: TrainConfig, base: float) -> float:
    """Multiplier of `base`: linear warmup, then cosine from base down to min_lr."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    floor = min(cfg.min_lr / base, 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


CHECKPOINT_FORMAT = 2


def save_checkpoint(model, folder: Path, stats: dict, text_cache: TextCache, extra: dict | None = None) -> None:
    """Write atomically (a crash mid-save leaves the previous checkpoint intact). config.json records the
    model's registered name, its config, the layouts it was trained on, and `extra` (steps, data, suite)."""
    from safetensors.torch import save_file

    chunk, action_dim = model.chunk_shape
    info = {"format": CHECKPOINT_FORMAT, "model": entry_of_config(model.cfg).name, "config": model.cfg.to_dict(),
            "layouts": {"cameras": list(model.cfg.cameras), "state": LIBERO_STATE_LAYOUT,
                        "action": LIBERO_ACTION_CONVENTION, "action_dim": action_dim, "chunk": chunk},
            **(extra or {})}
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    (tmp / "config.json").write_text(json.dumps(info, indent=2))
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
    save_file({t: e.contiguous() for t, e in text_cache.table.items()} or {"": torch.zeros(1)},
              str(tmp / "text_cache.safetensors"))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def export_checkpoint(src: str | Path, dst: str | Path, dtype: str = "bf16") -> Path:
    """A copy of checkpoint `src` at `dst` with its floating-point weights stored as `dtype` (bf16 halves a
    checkpoint, so that small baselines can ship inside the package). Loading casts them back into the
    model's fp32 parameters, so the exported policy is the trained one with its weights rounded to bf16;
    config.json says so (`weights_dtype`, `exported_from`)."""
    from safetensors.torch import load_file, save_file

    from bench.core.provenance import file_hash

    if dtype not in WEIGHT_DTYPES:
        raise ValueError(f"unknown weight dtype {dtype!r}; choose one of {', '.join(WEIGHT_DTYPES)}")
    src, dst = Path(src), Path(dst)
    info = checkpoint_info(src)  # checks it is a checkpoint
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{dst} is not empty; remove it or choose another --out")
    dst.mkdir(parents=True, exist_ok=True)
    dropped = list(getattr(load_models().get(info["model"]).build, "TRAINING_ONLY", ()))
    weights = {k: v.to(WEIGHT_DTYPES[dtype]) if v.is_floating_point() else v
               for k, v in load_file(str(src / "model.safetensors")).items()
               if not any(k.startswith(m + ".") for m in dropped)}
    save_file(weights, str(dst / "model.safetensors"))
    for name in ("stats.json", "text_cache.safetensors"):
        shutil.copyfile(src / name, dst / name)
    info = {**info, "weights_dtype": dtype, "exported_from": file_hash(src), "dropped_modules": dropped}
    (dst / "config.json").write_text(json.dumps(info, indent=2))
    return dst


BUNDLE_DTYPES = {"dit4dit": "fp32"}  # how each model ships (others: bf16, under 10 MB each)
CURVE_FOLDERS = {"libero_spatial": "", "gr1_tabletop_proxy": "gr1_proxy_train"}  # under results/<model>/


def bundle_run(run: str | Path, checkpoints: Path = Path("bench/checkpoints"), results: Path = Path("results"),
               dtype: str | None = None) -> tuple[Path, Path]:
    """Ship a finished training run: its checkpoint into the package as <model>_tiny_<suite> (what `bench run`
    loads by default), its loss curve and training config into results/<model>/ (a subfolder for other suites:
    CURVE_FOLDERS), so evaluations need neither the demos nor the run folder. Returns
    (bundled checkpoint, curves folder). An existing bundle is replaced."""
    run = Path(run)
    info = checkpoint_info(run / "checkpoint")
    model, suite = info["model"], info.get("suite")
    if not suite:
        raise ValueError(f"{run}/checkpoint records no suite (trained on several?): bundle it by hand")
    planned = json.loads((run / "train_config.json").read_text())["train"]["steps"]
    if info.get("trained_steps") != planned:
        raise ValueError(f"{run} has trained {info.get('trained_steps')} of its {planned} steps: finish it first "
                         "(bench train ... --resume)")
    dst = checkpoints / f"{model}_tiny_{suite}"
    shutil.rmtree(dst, ignore_errors=True)
    export_checkpoint(run / "checkpoint", dst, dtype or BUNDLE_DTYPES.get(model, "bf16"))
    curves = results / model / CURVE_FOLDERS.get(suite, f"{suite}_train")
    curves.mkdir(parents=True, exist_ok=True)
    for f in [run / "losses.csv", run / "losses.png", *sorted(run.glob("train_config*.json"))]:
        if f.exists():
            shutil.copyfile(f, curves / f.name)
    return dst, curves


def checkpoint_info(folder: str | Path) -> dict:
    """config.json in the current format. Checkpoints from before it (one flat dict: `policy` + the DiT4DiT
    config + training facts) are read as DiT4DiT ones trained on LIBERO's layouts."""
    folder = Path(folder)
    missing = [f for f in CHECKPOINT_FILES if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a model checkpoint (missing {', '.join(missing)})")
    raw = json.loads((folder / "config.json").read_text())
    if raw.get("format") == CHECKPOINT_FORMAT:
        return raw
    facts = ("trained_steps", "batch_size", "data_fingerprint", "num_demos", "suite")
    config = {k: v for k, v in raw.items() if k not in facts and k != "policy"}
    return {"format": 1, "model": raw.get("policy", "dit4dit"), "config": config,
            "layouts": {"cameras": config.get("cameras"), "state": LIBERO_STATE_LAYOUT,
                        "action": LIBERO_ACTION_CONVENTION, "action_dim": config["action"]["action_dim"],
                        "chunk": config["action"]["chunk"]},
            **{k: raw[k] for k in facts if k in raw}}


def load_checkpoint(folder: str | Path, text_encoder: bool = True) -> tuple:
    """(model, text cache, stats) of any registered model's checkpoint."""
    from safetensors.torch import load_file

    folder = Path(folder)
    info = checkpoint_info(folder)
    entry = load_models().get(info["model"])
    cfg = entry.config_cls.from_dict(info["config"])
    model = entry.build(cfg)
    dropped = info.get("dropped_modules", [])
    missing, unexpected = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=not dropped)
    absent = [k for k in missing if not any(k.startswith(m + ".") for m in dropped)]
    if absent or unexpected:
        raise RuntimeError(f"{folder}: weights do not match {info['model']}: missing {absent[:3]}, "
                           f"unexpected {unexpected[:3]}")
    if dropped:
        model.restore_training_only()
    table = {k: v for k, v in load_file(str(folder / "text_cache.safetensors")).items() if k}
    stats = json.loads((folder / "stats.json").read_text())
    # the cache holds the trained instructions; an encoder serves new ones (a precomputed one needs its file)
    can_encode = text_encoder and not (cfg.text == "precomputed" and not cfg.text_embeddings)
    encoder = make_text_encoder(cfg.text, cfg.text_max_tokens, cfg.text_embeddings) if can_encode else None
    return model, TextCache(encoder, table), stats


def init_weights(model, checkpoint: str | Path, modules: tuple[str, ...]) -> None:
    """Start `model`'s named submodules from a checkpoint's weights (the rest keeps its fresh init); every
    weight of those modules must be there with the same shape."""
    from safetensors.torch import load_file

    saved = load_file(str(Path(checkpoint) / "model.safetensors"))
    own = model.state_dict()
    for module in modules:
        prefix = module + "."
        mine = {k: v for k, v in own.items() if k.startswith(prefix)}
        if not mine:
            raise ValueError(f"--init-modules {module}: this model has no such module")
        missing = [k for k in mine if k not in saved or saved[k].shape != mine[k].shape]
        if missing:
            raise ValueError(f"{checkpoint} cannot initialise {module}: {len(missing)} of its weights are absent or "
                             f"shaped differently (first: {missing[0]})")
        model.load_state_dict({k: saved[k] for k in mine}, strict=False)


def _check_tracker(name: str) -> None:
    import importlib.util

    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKERS)}")
    if importlib.util.find_spec(TRACKERS[name]) is None:
        raise ValueError(f"--log-with {name} needs the {TRACKERS[name]} package: pip install {TRACKERS[name]}")


def _param_groups(model, cfg: TrainConfig) -> list[dict]:
    groups = []
    for g in model.param_groups():
        lr = cfg.group_lr.get(g["name"], cfg.lr)
        params = [p for p in g["params"] if p.requires_grad]  # frozen ones (an EMA copy) are not optimised
        groups.append({"params": params, "lr": lr, "base_lr": lr, "name": g["name"]})
    unknown = set(cfg.group_lr) - {g["name"] for g in groups}
    if unknown:
        raise ValueError(f"no parameter group named {', '.join(sorted(unknown))}; this model has "
                         f"{', '.join(g['name'] for g in groups)}")
    return groups


def loss_columns(df) -> list[str]:
    """The loss columns of a losses.csv (the rest: step, learning rates, grad norm, speed, time)."""
    return [c for c in df.columns[1:] if not c.startswith("lr_") and c not in ("grad_norm", "samples_per_s", "elapsed_s")]


def plot_losses(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    if not csv_path.exists() or csv_path.stat().st_size == 0:
        return  # nothing logged yet (the header comes with the first row)
    df = pd.read_csv(csv_path)
    if df.empty:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    losses = loss_columns(df)
    for col in losses:
        ax.plot(df["step"], df[col].rolling(5, min_periods=1).mean(), label=col)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (5-point mean)")
    ax.set_title(png_path.parent.name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)


def train(model_cfg, data: list[str], out: str | Path, cfg: TrainConfig, resume: bool = False,
          on_log: Callable[[int, dict], None] | None = None, until: int | None = None) -> Path:
    """Train the registered model `model_cfg` belongs to into `out`; returns the checkpoint folder
    (`out/checkpoint`). `until`: stop after that step with a checkpoint (the schedule stays `cfg.steps` long),
    so a caller can score a learning-curve point and resume; the result is the uninterrupted run's."""
    from accelerate import Accelerator

    if cfg.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {cfg.precision!r}; choose one of {', '.join(PRECISIONS)}")
    check_choice("attention", cfg.attention, ATTENTION)
    if cfg.log_with is not None:
        _check_tracker(cfg.log_with)
    out = Path(out)
    state_path = out / "train_state.pt"
    if out.exists() and any(out.iterdir()) and not resume:
        raise FileExistsError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.log_with == "wandb":  # offline by default: nothing leaves the machine unless the user says so
        import os

        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_DIR", str(out / "trackers"))
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), log_with=cfg.log_with,
                              project_dir=str(out / "trackers") if cfg.log_with else None)

    entry = entry_of_config(model_cfg)
    model = entry.build(model_cfg)
    dataset = LiberoDemoDataset(data, model.window_spec(), stats_path=out / "stats.json",
                                demo_fraction=cfg.demo_fraction, fraction_seed=cfg.fraction_seed,
                                frame_cache=cfg.frame_cache)
    suites = {file_suite(p) for p in data}
    suite = suites.pop() if len(suites) == 1 else None  # recorded in the checkpoint: `bench run --suite` finds it
    text_cache = TextCache(make_text_encoder(model_cfg.text, model_cfg.text_max_tokens, model_cfg.text_embeddings))
    languages = sorted({d.language for d in dataset.demos})
    text_cache(languages)  # every instruction once, before the loop

    model.normalizer.set_stats(dataset.stats)
    if cfg.init_from and not (resume and state_path.exists()):
        init_weights(model, cfg.init_from, cfg.init_modules)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg), betas=cfg.betas, weight_decay=cfg.weight_decay)
    start, elapsed_before = 0, 0.0
    if resume and state_path.exists():
        saved = torch.load(state_path, weights_only=False)
        fingerprint = dataset.stats["fingerprint"]
        if saved.get("data_fingerprint", fingerprint) != fingerprint:
            raise ValueError(f"{out} was trained on other data (fingerprint {saved['data_fingerprint']}, now "
                             f"{fingerprint}): its normalisation would no longer match; train into a new --out")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        start = saved["step"]
        elapsed_before = saved.get("elapsed_s", float("nan"))  # training seconds up to that checkpoint
    stop = cfg.steps if until is None else min(cfg.steps, until)
    if start >= stop:  # already there: nothing to train, nothing to record
        dataset.close()
        return out / "checkpoint"
    model.train()
    set_attention(model, cfg.attention)
    if cfg.compile:
        compile_blocks(model)

    loader = DataLoader(dataset, batch_sampler=StepBatches(len(dataset), cfg.batch_size, cfg.seed, start, stop,
                                                           dataset.window_weights(cfg.balance)),
                        num_workers=cfg.num_workers, collate_fn=default_collate)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    core = accelerator.unwrap_model(model)
    from bench.core.provenance import provenance

    run_info = {"train": asdict(cfg), "model": entry.name, "config": model_cfg.to_dict(), "data": [str(p) for p in data],
                "data_fingerprint": dataset.stats["fingerprint"], "num_demos": len(dataset.demos),
                "num_windows": len(dataset), "parameters": count_parameters(core),
                "trainable_parameters": count_parameters(core, trainable=True), "resumed_at": start,
                "provenance": provenance()}
    (out / ("train_config.json" if start == 0 else f"train_config.resume{start}.json")).write_text(
        json.dumps(run_info, indent=2))
    if cfg.log_with:
        hparams = {k: v for k, v in asdict(cfg).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers(out.name, config={**hparams, "model": entry.name, "resumed_at": start})
    csv_path = out / "losses.csv"
    # a run killed before its first logged row left no header: start the file afresh
    new_csv = not csv_path.exists() or start == 0 or not csv_path.read_text().strip()
    if not new_csv:  # drop rows logged after the checkpoint we resume from (they will be redone)
        lines = csv_path.read_text().splitlines()
        kept = [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= start]
        if lines and not lines[0].endswith(",elapsed_s"):  # logged before training time was: left blank
            lines[0], kept = lines[0] + ",elapsed_s", [ln + "," for ln in kept]
        csv_path.write_text("".join(ln + "\n" for ln in lines[:1] + kept))
    log = csv_path.open("w" if new_csv else "a", newline="")
    writer = csv.writer(log)
    header_due = new_csv  # written with the first row: its columns are the model's losses and groups

    def checkpoint(step: int) -> None:
        if not accelerator.is_main_process:
            return
        save_checkpoint(core, out / "checkpoint", dataset.stats, text_cache,
                        extra={"trained_steps": step, "batch_size": cfg.batch_size,
                               "data_fingerprint": dataset.stats["fingerprint"], "num_demos": len(dataset.demos),
                               "demo_fraction": cfg.demo_fraction, "suite": suite, "elapsed_s": elapsed()})
        if step in cfg.keep_checkpoints:  # e.g. convergence studies evaluate the policy part way through
            kept = out / f"checkpoint_step{step}"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(out / "checkpoint", kept)
        tmp = state_path.with_name(state_path.name + ".tmp")  # a kill mid-write keeps the previous state whole
        torch.save({"model": core.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "data_fingerprint": dataset.stats["fingerprint"], "elapsed_s": elapsed()}, tmp)
        tmp.replace(state_path)
        log.flush()
        plot_losses(csv_path, out / "losses.png")

    step = start
    window = began = time.perf_counter()

    def elapsed() -> float:
        """Seconds spent training so far, over every resumed invocation (the x axis of wall-time curves)."""
        return elapsed_before + time.perf_counter() - began

    for batch in loader:
        # Noise, timesteps and dropout are seeded by (seed, step, process): a resumed run repeats the
        # uninterrupted one exactly, whatever drew from the global RNG before.
        torch.manual_seed(cfg.seed * 1_000_003 + step * 64 + accelerator.process_index)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor(step, cfg, group["base_lr"])
        text = text_cache(batch["language"]).to(accelerator.device)
        with precision_context(accelerator.device, cfg.precision):
            losses = model(batch, text)
        accelerator.backward(losses["loss"])
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if hasattr(core, "after_step"):  # e.g. FLARE's EMA target encoder follows the trained one
            core.after_step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            rate = cfg.log_every * cfg.batch_size / max(now - window, 1e-9)
            window = now
            lrs = {f"lr_{g['name']}": g["lr"] for g in optimizer.param_groups}
            row = {k: float(v.detach()) for k, v in losses.items()}
            names = ["loss", *sorted(k for k in row if k != "loss")]
            if header_due:
                writer.writerow(["step", *names, *lrs, "grad_norm", "samples_per_s", "elapsed_s"])
                header_due = False
            writer.writerow([step, *(row[k] for k in names), *lrs.values(), float(grad_norm), rate, elapsed()])
            log.flush()  # a crash or a kill loses no logged step
            if cfg.log_with:
                accelerator.log({**row, **lrs, "grad_norm": float(grad_norm), "samples_per_s": rate}, step=step)
            if on_log:
                on_log(step, {**row, "samples_per_s": rate})
        if step % cfg.checkpoint_every == 0 or step in (cfg.steps, stop) or step in cfg.keep_checkpoints:
            checkpoint(step)
    log.close()
    dataset.close()
    if cfg.log_with:
        accelerator.end_training()
    return out / "checkpoint"
