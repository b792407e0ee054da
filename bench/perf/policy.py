"""`bench perf policy`: what one DiT4DiT action chunk costs, measured in one run.

For each config (random weights): latency of one chunk at batch 1 and 8 (video
features with early exit + `euler_steps` action-DiT passes; the tiny config's
pixel VAE is included, the full config's Wan VAE is not, as its weights are not
here), the early-exit feature pass against a full video-DiT pass on the same
input (the ratio is what early exit saves), and training samples/s (a loss,
backward and AdamW step on a random batch, data loading excluded). The full
config's training step needs about 16 bytes per parameter of AdamW state
(~35 GB), so it is measured only on an accelerator with room for it, from latents
(what a frozen VAE would give; the Wan VAE's own cost is not in it).
"""

from __future__ import annotations

import gc
import statistics
import time

import torch

from bench.models.dit4dit import DiT4DiT, count_parameters, make_config, precision_context
from bench.models.vae import VAES


def _time(fn, repeats: int, device="cpu") -> float:
    """Median seconds of `fn` after one warm-up; on a GPU each call is timed to its kernels' end (CUDA runs
    asynchronously: without a synchronize the clock would stop when the launches return)."""
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _inputs(model: DiT4DiT, b: int, device):
    cfg = model.cfg
    s = cfg.image_size
    n_cams = len(cfg.cameras)
    f = cfg.vae_factor if cfg.vae == "pixel" else VAES[cfg.vae].spatial_factor
    channels = cfg.video.latent_channels
    frames = model.latent_frames
    text_dim = cfg.video.crossattn_proj_in or cfg.video.text_dim
    text = torch.randn(b, cfg.text_max_tokens, text_dim, device=device)
    x_now = torch.randn(b, channels, 1, s // f, n_cams * s // f, device=device)
    images = {c: torch.randint(0, 256, (b, s, s, 3), dtype=torch.uint8, device=device) for c in cfg.cameras}
    return images, x_now, frames, text


def measure_config(name: str, batches=(1, 8), repeats: int = 3, train_batch: int = 8, device="cpu",
                   train: bool | None = None, log=print) -> dict:
    torch.manual_seed(0)
    cfg = make_config(name)
    model = DiT4DiT(cfg).to(device).eval()
    out = {"config": name, "parameters": count_parameters(model),
           "video_parameters": count_parameters(model.video_dit),
           "action_parameters": count_parameters(model.action_dit), "device": str(device),
           "device_name": torch.cuda.get_device_name(device) if str(device).startswith("cuda") else None,
           "vae_in_latency": cfg.vae == "pixel", "latency_s": {}, "features_early_exit_s": {},
           "video_full_pass_s": {}, "early_exit_speedup": {}}
    for b in batches:
        images, x_now, frames, text = _inputs(model, b, device)
        state = torch.zeros(b, 8, device=device)
        if cfg.vae == "pixel":
            chunk = lambda: model.predict(images, state, text)  # noqa: E731
        else:
            chunk = lambda: model.predict_from_latents(x_now, state, text)  # noqa: E731
        with torch.no_grad():
            x0 = x_now.expand(-1, -1, frames, -1, -1).contiguous()
            t = torch.full((b,), cfg.feature_timestep, device=device)
            early = _time(lambda: model.video_dit.features(x0, t, text), repeats, device)
            full = _time(lambda: model.video_dit(x0, t, text), repeats, device)
        out["latency_s"][b] = _time(chunk, repeats, device)
        out["features_early_exit_s"][b] = early
        out["video_full_pass_s"][b] = full
        out["early_exit_speedup"][b] = full / early
        log(f"{name} batch {b}: chunk {out['latency_s'][b] * 1e3:.1f} ms, early-exit features {early * 1e3:.1f} ms "
            f"vs full video pass {full * 1e3:.1f} ms (x{full / early:.2f})")
    need = count_parameters(model) * 16
    if train is None:  # the full config's optimizer state fits only on a large accelerator
        on_gpu = str(device).startswith("cuda")
        train = name != "full" or (on_gpu and torch.cuda.get_device_properties(0).total_memory > 1.5 * need)
    if train:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        images, x_now, frames, text = _inputs(model, train_batch, device)
        s = cfg.image_size
        batch = {"images": {c: torch.randint(0, 256, (train_batch, 1 + cfg.n_future, s, s, 3), dtype=torch.uint8,
                                             device=device) for c in cfg.cameras},
                 "actions": torch.zeros(train_batch, cfg.action.chunk, 7, device=device),
                 "state": torch.zeros(train_batch, 8, device=device),
                 "action_mask": torch.ones(train_batch, cfg.action.chunk, dtype=torch.bool, device=device)}
        if cfg.vae != "pixel":  # no VAE weights here: the step starts from latents, as with a frozen VAE's cache
            batch["latents"] = x_now.expand(-1, -1, frames, -1, -1).contiguous()

        def step(bf16: bool = False):
            with precision_context(device, "bf16" if bf16 else "fp32"):
                loss = model.loss(batch, text)["loss"]
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        out["train_samples_per_s"] = train_batch / _time(step, repeats, device)
        out["train_samples_per_s_bf16"] = train_batch / _time(lambda: step(bf16=True), repeats, device)  # --precision bf16
        out["train_bf16_speedup"] = out["train_samples_per_s_bf16"] / out["train_samples_per_s"]
        out["train_batch"] = train_batch
        log(f"{name} training: {out['train_samples_per_s']:.1f} samples/s at batch {train_batch}; bf16 autocast "
            f"{out['train_samples_per_s_bf16']:.1f} ({out['train_bf16_speedup']:.2f}x)")
    else:
        out["train_samples_per_s"] = None
        out["train_skipped"] = f"AdamW training needs ~{need / 2**30:.0f} GiB; not measured on {device}"
        log(f"{name} training: skipped ({out['train_skipped']})")
    del model
    gc.collect()
    return out


def run_policy_benchmark(configs=("tiny", "full"), batches=(1, 8), repeats: int = 3, train_batch: int = 8, device="cpu",
                         log=print) -> dict:
    from bench.core.provenance import provenance

    results = [measure_config(c, batches, repeats=repeats, train_batch=train_batch, device=device, log=log)
               for c in configs]
    return {"benchmark": "policy", "torch_threads": torch.get_num_threads(), "results": results,
            "provenance": provenance()}
