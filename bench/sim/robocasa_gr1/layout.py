"""The GR1 29-d joint layout, as DiT4DiT and GR00T pack it, and the official env's modality keys.

    [ left_arm 7 | right_arm 7 | left_hand 6 | right_hand 6 | waist 3 ]

The official gym wrapper (robocasa_gr1.utils.gym_utils.gymnasium_groot) observes `state.<part>`
joint positions and takes `action.<part>` absolute joint targets; these functions are the only
place the flat vector and those dicts meet. numpy only (it runs inside the GR1 worker too).
"""

from __future__ import annotations

import numpy as np

PARTS: tuple[tuple[str, int], ...] = (("left_arm", 7), ("right_arm", 7), ("left_hand", 6), ("right_hand", 6),
                                      ("waist", 3))
DIM = sum(n for _, n in PARTS)


def slices() -> dict[str, slice]:
    """part -> its slice of the flat vector."""
    out, start = {}, 0
    for name, n in PARTS:
        out[name] = slice(start, start + n)
        start += n
    return out


def pack(parts: dict, prefix: str) -> np.ndarray:
    """{'<prefix>.<part>': array} -> the flat 29-d float32 vector (extra keys ignored)."""
    chunks = []
    for name, n in PARTS:
        key = f"{prefix}.{name}"
        if key not in parts:
            raise KeyError(f"{key} missing: the GR1 layout needs {', '.join(f'{prefix}.{p}' for p, _ in PARTS)}")
        v = np.asarray(parts[key], dtype=np.float32).reshape(-1)
        if v.shape[0] != n:
            raise ValueError(f"{key} has {v.shape[0]} values, the GR1 layout has {n}")
        chunks.append(v)
    return np.concatenate(chunks)


def unpack(vector: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """The flat 29-d vector (or a (..., 29) array) -> {'<prefix>.<part>': array}."""
    v = np.asarray(vector)
    if v.shape[-1] != DIM:
        raise ValueError(f"a GR1 vector has {DIM} values (left_arm 7, right_arm 7, left_hand 6, right_hand 6, "
                         f"waist 3), got {v.shape[-1]}")
    return {f"{prefix}.{name}": v[..., s].copy() for name, s in slices().items()}
