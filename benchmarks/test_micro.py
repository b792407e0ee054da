"""Micro-benchmarks (pytest-benchmark): what one action chunk of each model costs, and one simulator step and
one camera render. `make bench-micro` writes results/perf/micro.json, which the report plots. Not part of the
test suite: timings belong in benchmarks, not in assertions."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    torch.set_num_threads(1)  # as the policy runs beside the sim workers


def _models():
    from bench.models.registry import load_models

    return list(load_models())


@pytest.mark.parametrize("model", _models())
def test_action_chunk(benchmark, model):
    """One action chunk at batch 1 from the model's tiny config (random weights: the cost, not the skill)."""
    from bench.models.registry import load_models, model_config

    torch.manual_seed(0)
    entry = load_models().get(model)
    cfg = model_config(model, "tiny")
    net = entry.build(cfg).eval()
    size = cfg.image_size
    images = {c: torch.randint(0, 256, (1, size, size, 3), dtype=torch.uint8) for c in cfg.cameras}
    state = torch.zeros(1, 8)
    text = torch.randn(1, cfg.text_max_tokens, 384)
    gen = torch.Generator().manual_seed(0)
    benchmark.extra_info["parameters"] = sum(p.numel() for p in net.parameters() if p.requires_grad)
    with torch.no_grad():
        benchmark(lambda: net.predict(images, state, text, generator=gen))


@pytest.fixture(scope="module")
def sim():
    from bench.sim.libero.env import LiberoSim
    from bench.sim.rendering import configure_headless_gl
    from bench.sim.suites import get_suite

    configure_headless_gl()
    suite = get_suite("libero_spatial")
    s = LiberoSim(suite.tasks()[0], suite.protocol)
    s.reset_to(suite.initial_conditions(0)[0], 7)
    yield s
    s.close()


def test_env_step(benchmark, sim):
    """One control step of the LIBERO simulator (physics at the protocol's control rate, no rendering)."""
    action = np.zeros(7)
    benchmark(lambda: sim.step(action))


def test_render_two_cameras(benchmark, sim):
    """Both policy cameras at the protocol resolution (what every observation costs)."""
    benchmark(lambda: sim.render(sim.protocol.cameras))
