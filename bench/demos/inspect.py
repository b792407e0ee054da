"""`bench demos inspect`: what is in a demo file, as a table and a contact sheet."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from bench.demos.libero_hdf5 import DemoFileError, demo_names, read_demos


def describe(path: Path) -> pd.DataFrame:
    demos = read_demos(path, obs_keys=())
    df = pd.DataFrame({"task": [d.task_name for d in demos], "len": [len(d.actions) for d in demos]})
    return (df.groupby("task", sort=False)["len"]
            .agg(demos="count", mean_len="mean", min_len="min", max_len="max", total_steps="sum").reset_index())


def contact_sheet(path: Path, out: Path, per_row: int = 6, max_rows: int = 8) -> Path:
    """First and last agent-view frame of demos (one per task first), upright, in a grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with h5py.File(path, "r") as f:
        names = demo_names(f["data"])
        seen, picked = set(), []
        for n in names:  # one demo per task first, then the rest
            task = str(f["data"][n].attrs.get("bddl_file_name", f["data"].attrs.get("bddl_file_name", "")))
            if task not in seen:
                seen.add(task)
                picked.append(n)
        picked += [n for n in names if n not in picked]
        picked = picked[: per_row * max_rows // 2]
        if not picked or "obs/agentview_rgb" not in f["data"][picked[0]]:
            raise DemoFileError(f"{path}: key obs/agentview_rgb is missing, no frames to show")
        fig, axes = plt.subplots(int(np.ceil(len(picked) * 2 / per_row)), per_row,
                                 figsize=(per_row * 1.6, np.ceil(len(picked) * 2 / per_row) * 1.8), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for i, n in enumerate(picked):
            frames = f["data"][n]["obs/agentview_rgb"]
            for j, (t, label) in enumerate(((0, "start"), (len(frames) - 1, "end"))):
                ax = axes.flat[2 * i + j]
                ax.imshow(frames[t][::-1, ::-1])  # stored upside down, as LIBERO's files
                ax.set_title(f"{n} {label}", fontsize=6)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
