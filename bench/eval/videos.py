"""A contact sheet of a run's recorded episodes (`bench run --video N`).

Why: to say how a policy fails (does it reach the object? close the gripper? lift?)
one looks at the episodes; a grid of evenly spaced frames, one row per episode,
labelled with its outcome, answers that without opening each mp4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.core.records import latest_by_key


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` frames evenly spaced from first to last."""
    import imageio.v3 as iio

    frames = iio.imread(path)  # (T, H, W, 3)
    idx = np.linspace(0, len(frames) - 1, num=min(count, len(frames))).round().astype(int)
    return [frames[i] for i in idx]


def contact_sheet(out_dir: Path, records: list[dict], frames: int = 8, max_rows: int = 30,
                  caption: str = "") -> Path | None:
    """Write OUT_DIR/videos.png (failures first, then successes) and return its path; None when the
    run recorded no videos. A record whose mp4 is missing is named in its row instead of dropped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recorded = [r for r in latest_by_key(records).values() if r.get("video")]
    if not recorded:
        return None
    recorded.sort(key=lambda r: (bool(r.get("success")), r.get("task_id", 0), r.get("init_id", 0)))
    recorded = recorded[:max_rows]
    fig, axes = plt.subplots(len(recorded), frames, figsize=(frames * 1.3, len(recorded) * 1.45), squeeze=False)
    for row, rec in zip(axes, recorded):
        for ax in row:
            ax.axis("off")
        outcome = "success" if rec.get("success") else "failure"
        title = f"{rec['key']}: {outcome}, {rec.get('steps')} steps"
        path = out_dir / rec["video"]
        if not path.exists():
            row[0].set_title(f"{title} (missing: {rec['video']})", fontsize=7, loc="left")
            continue
        for ax, frame in zip(row, read_frames(path, frames)):
            ax.imshow(frame)
        row[0].set_title(title, fontsize=7, loc="left", color="#1f6f1f" if rec.get("success") else "#a01010")
    top = 1.0
    if caption:  # where the episodes came from: the sheet may travel without its summary
        fig.suptitle(caption, fontsize=7)
        top = 1 - 0.35 / fig.get_figheight()  # room for it above the first row's title
    fig.tight_layout(rect=(0, 0, 1, top))
    out = out_dir / "videos.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
