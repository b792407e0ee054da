"""`bench perf train`: training throughput of every registered model, the old path against the new, in one run.

old  what `bench train` does by default: each window's frames decompressed from the HDF5 file, fp32, eager.
new  the training recipe's settings: frames from the decoded, memory-mapped cache (`--frame-cache`), bf16
     autocast (`--precision bf16`), the repeated blocks compiled (`--compile`), the video DiT's attention as
     plain matmuls and softmax (`--attention math`).

For each model and path: samples/s over the same steps of the real loop's pieces (batch indices drawn as
`bench train` draws them), where a step's time goes (data, text, forward per top-level module, backward,
optimizer), FLOPs per sample (torch's flop counter, forward and backward), and the achieved fraction of this
machine's matmul peak, measured in the same run (a 2048-square matmul in fp32 and in bf16). Both paths also
score one fixed batch with dropout off: fp32 eager against fp32 compiled from the cache must agree to float
noise (`loss_fp32_rel_diff`); bf16 changes the arithmetic and its difference is reported beside it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.data import default_collate

PATHS = {
    "old": {"frame_cache": False, "precision": "fp32", "compile": False, "attention": "default"},
    "new": {"frame_cache": True, "precision": "bf16", "compile": True, "attention": "math"},
}


def matmul_peak(size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of a size-square matmul in fp32 and bf16 on this machine (the median of `repeats`)."""
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        torch.mm(a, b)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - t)
        out[name] = 2 * size**3 / statistics.median(times) / 1e9
    return out


def flops_per_sample(model, batch: dict, text: torch.Tensor) -> float:
    """Forward and backward FLOPs of one training sample (torch.utils.flop_counter, eager fp32)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(batch, text)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(text)


class _ModuleClock:
    """Forward seconds spent in each module of the top four levels (`video_dit`, `video_dit.transformer`, ...),
    summed over calls (hooks around each call). A model may bypass a module's own call (DiT4DiT's feature pass
    calls `video_dit.features`, and its early exit leaves the transformer by an exception that skips the
    transformer's closing hook), so a top-level module's time is the largest, over depths, of the summed time
    of its descendants at that depth (siblings never overlap): a lower bound that sees every pass (`covered`)."""

    DEPTH = 3

    def __init__(self, model):
        self.seconds: dict[str, float] = defaultdict(float)
        self._start: dict[str, list[float]] = defaultdict(list)
        self.handles = []
        for name, child in model.named_modules():
            if not name or name.count(".") > self.DEPTH:
                continue
            self.handles.append(child.register_forward_pre_hook(lambda m, a, n=name: self._start[n].append(time.perf_counter())))
            self.handles.append(child.register_forward_hook(lambda m, a, o, n=name: self._stop(n)))

    def _stop(self, name: str) -> None:
        self.seconds[name] += time.perf_counter() - self._start[name].pop()

    def covered(self) -> dict[str, float]:
        """Seconds per top-level module (see the class docstring)."""
        out: dict[str, float] = defaultdict(float)
        for depth in range(self.DEPTH + 1):
            at: dict[str, float] = defaultdict(float)
            for n, v in self.seconds.items():
                if n.count(".") == depth:
                    at[n.split(".")[0]] += v
            for top, v in at.items():
                out[top] = max(out[top], v)
        return dict(out)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _batch(dataset, indices: list[int]) -> dict:
    return default_collate([dataset[i] for i in indices])


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


def measure_model(name: str, config: str, data: list[str], batch_size: int, steps: int, rounds: int,
                  overrides: dict | None = None, log=print) -> dict:
    """Both paths of one registered model (see the module docstring)."""
    from bench.demos.dataset import LiberoDemoDataset
    from bench.models.common import compile_blocks, count_parameters, precision_context, set_attention
    from bench.models.registry import load_models, model_config
    from bench.models.text import TextCache, make_text_encoder
    from bench.train.loop import StepBatches

    cfg = model_config(name, config, **(overrides or {}))
    entry = load_models().get(name)
    datasets, models = {}, {}
    stats = Path(tempfile.mkdtemp()) / "stats.json"  # normalisation statistics, computed once, not beside the data
    for path, how in PATHS.items():
        torch.manual_seed(0)
        model = entry.build(cfg)
        datasets[path] = LiberoDemoDataset(data, model.window_spec(), stats_path=stats, frame_cache=how["frame_cache"])
        model.normalizer.set_stats(datasets[path].stats)
        models[path] = model
    text_cache = TextCache(make_text_encoder(cfg.text, cfg.text_max_tokens, cfg.text_embeddings))
    text_cache(sorted({d.language for d in datasets["old"].demos}))
    indices = list(StepBatches(len(datasets["old"]), batch_size, 0, 0, steps + 1))

    # one fixed batch, dropout off: the paths must compute the same loss (fp32), bf16 is reported beside it
    fixed = _batch(datasets["old"], indices[0])
    fixed_new = _batch(datasets["new"], indices[0])
    same_frames = all(torch.equal(fixed["images"][c], fixed_new["images"][c]) for c in fixed["images"])
    text = text_cache(fixed["language"])
    flops = flops_per_sample(models["old"], fixed, text)
    compile_s = time.perf_counter()
    set_attention(models["new"], PATHS["new"]["attention"])
    compiled = compile_blocks(models["new"])
    losses = {}
    for path, batch, precision in (("old", fixed, "fp32"), ("new_fp32", fixed_new, "fp32"), ("new_bf16", fixed_new, "bf16")):
        model = models["old" if path == "old" else "new"]
        model.eval()
        torch.manual_seed(1)
        with torch.no_grad(), precision_context("cpu", precision):
            losses[path] = float(model(batch, text)["loss"])
        model.train()
    compile_s = time.perf_counter() - compile_s

    optimizers = {p: torch.optim.AdamW(m.parameters(), lr=1e-4) for p, m in models.items()}
    times = {p: defaultdict(float) for p in PATHS}

    def step(path: str, i: int, t: dict) -> None:
        model, opt, how = models[path], optimizers[path], PATHS[path]
        s0 = time.perf_counter()
        batch = _batch(datasets[path], indices[i])
        s1 = time.perf_counter()
        text = text_cache(batch["language"])
        s2 = time.perf_counter()
        torch.manual_seed(i)
        with precision_context("cpu", how["precision"]):
            loss = model(batch, text)["loss"]
        s3 = time.perf_counter()
        loss.backward()
        s4 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        s5 = time.perf_counter()
        for key, dt in (("data", s1 - s0), ("text", s2 - s1), ("forward", s3 - s2), ("backward", s4 - s3),
                        ("optimizer", s5 - s4), ("step", s5 - s0)):
            t[key] += dt

    for path in PATHS:  # warm-up (compiles the backward too), not timed
        step(path, steps, defaultdict(float))
    for r in range(rounds):  # alternate which path goes first, so drifting load does not favour one
        for path in (PATHS if r % 2 == 0 else reversed(list(PATHS))):
            for i in range(steps):
                step(path, i, times[path])
    # where the forward time goes: one more round with hooks around every module call (their own cost kept out
    # of samples/s above)
    clocks, hooked = {}, {p: defaultdict(float) for p in PATHS}
    for path in PATHS:
        clocks[path] = _ModuleClock(models[path])
        for i in range(steps):
            step(path, i, hooked[path])
    out = {"model": name, "config": config, "parameters": count_parameters(models["old"]),
           "flops_per_sample": flops, "compiled_blocks": compiled, "compile_and_check_s": compile_s,
           "frame_cache_same_frames": same_frames, "loss_fixed_batch": losses,
           "loss_fp32_rel_diff": _rel(losses["old"], losses["new_fp32"]),
           "loss_bf16_rel_diff": _rel(losses["old"], losses["new_bf16"]), "paths": {}}
    n = rounds * steps
    for path, how in PATHS.items():
        t = times[path]
        forward = dict(sorted(((k, v / steps) for k, v in clocks[path].covered().items()), key=lambda kv: -kv[1]))
        out["paths"][path] = {
            **how, "samples_per_s": n * batch_size / t["step"],
            "step_s": {k: v / n for k, v in t.items()},
            "forward_by_module_s": forward,  # top-level modules (both video DiT passes in `video_dit`)
            "forward_by_submodule_s": {k: v / steps for k, v in sorted(clocks[path].seconds.items())
                                       if k.count(".") < 2},
            # pixel preparation, noise, losses (from the hooked round, as the modules' times)
            "forward_other_s": hooked[path]["forward"] / steps - sum(forward.values()),
        }
        clocks[path].remove()
        datasets[path].close()
    out["speedup"] = out["paths"]["new"]["samples_per_s"] / out["paths"]["old"]["samples_per_s"]
    log(f"{name}: old {out['paths']['old']['samples_per_s']:.1f} samples/s, new "
        f"{out['paths']['new']['samples_per_s']:.1f} (x{out['speedup']:.2f}); {flops / 1e9:.2f} GFLOP a sample; "
        f"fixed-batch loss fp32 rel. diff {out['loss_fp32_rel_diff']:.1e}, bf16 {out['loss_bf16_rel_diff']:.1e}")
    return out


def run_train_benchmark(models: list[str], data: list[str], config: str = "tiny", batch_size: int = 16,
                        steps: int = 4, rounds: int = 2, overrides: dict[str, dict] | None = None, log=print) -> dict:
    """`measure_model` for each of `models`, the matmul peak, and each path's achieved fraction of it."""
    from bench.core.provenance import provenance

    peak = matmul_peak()
    log(f"matmul peak (2048-square): fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    results = []
    for name in models:
        r = measure_model(name, config, data, batch_size, steps, rounds, (overrides or {}).get(name), log=log)
        for p in r["paths"].values():
            achieved = p["samples_per_s"] * r["flops_per_sample"] / 1e9
            p["achieved_gflops"] = achieved
            p["fraction_of_peak"] = achieved / peak[p["precision"]]
        results.append(r)
    out = {"benchmark": "train", "batch_size": batch_size, "timed_steps_per_path": steps * rounds,
           "torch_threads": torch.get_num_threads(), "matmul_peak_gflops": peak, "paths": PATHS,
           "data": [str(Path(d).name) for d in data], "results": results, "provenance": provenance()}
    for r in results:
        out[f"{r['model']}_speedup"] = r["speedup"]
    return out
