"""Each model's results folder says, in its own README.md, what produced its numbers: the model and its scale,
the data it was trained on, the budget, and the pixel path from the simulator's render to the model's input.
Written from the training configs committed beside the results (train_config.json), so it cannot drift from
them; `bench results --check` regenerates it and compares."""

from __future__ import annotations

import json
from pathlib import Path

PUBLISHED_SCALE = ("The published DiT4DiT is a 2B-parameter video DiT (Cosmos-Predict2.5-2B) with a DiT-B action head, "
                   "trained 80,000 steps at batch 256 on 64 GPUs from a pretrained video model; the models here are "
                   "tiny, trained from scratch on two CPU cores. Their numbers are what such a model reaches, set "
                   "beside the published ones, never a reproduction of them.")


def _training_line(config: dict) -> str:
    from bench.sim.frames import PIXEL_PATHS

    t, c = config["train"], config["config"]
    demos = ", ".join(f"`{Path(d).name}`" for d in config["data"])
    samples = t["steps"] * t["batch_size"]
    pixel = c.get("pixel_path", "float_interpolate")
    params = config.get("parameters")
    return (f"- **{config.get('data_suite') or _suite(config)}**: {config['model']}, config `{c.get('name', 'tiny')}`"
            + (f" ({params / 1e6:.2f} M parameters)" if params else "")
            + f"; trained from scratch on {config.get('num_demos', '?')} demos ({demos}, "
            f"{config.get('num_windows', '?')} windows, data fingerprint `{config.get('data_fingerprint', '?')}`); "
            f"{t['steps']:,} steps x batch {t['batch_size']} = {samples:,} samples, {t.get('precision', 'fp32')}, "
            f"seed {t.get('seed', 0)}; input frames {c.get('image_size')} px by the pixel path `{pixel}`: "
            f"{PIXEL_PATHS.get(pixel, pixel)}.")


def _suite(config: dict) -> str:
    name = Path(config["data"][0]).name
    return name.split("_128")[0] if "_128" in name else name


def folder_note(folder: Path) -> str:
    """The README of a model's results folder, from its committed training configs."""
    configs = sorted(folder.rglob("train_config.json"))
    lines = [f"# What produced the results in `{folder.as_posix()}`", "",
             "Every number in this folder was measured on the models below, evaluated on the real simulator under "
             "the suite's protocol (frames rendered at 224 px and rotated upright for LIBERO; the GR1 proxy's own "
             "render), the protocol's hash in every episode record.", ""]
    lines += [_training_line(json.loads(c.read_text())) for c in configs]
    lines += ["", PUBLISHED_SCALE, ""]
    return "\n".join(lines)


def write_folder_note(folder: Path) -> Path:
    out = folder / "README.md"
    out.write_text(folder_note(folder), encoding="utf-8")
    return out


def recompute_folder_note(folder: Path) -> list[str]:
    out = folder / "README.md"
    return [] if out.read_text(encoding="utf-8") == folder_note(folder) else [
        f"{out}: differs from what its training configs give (bench results notes/{folder.name})"]
