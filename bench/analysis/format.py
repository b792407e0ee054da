"""One way to print a rate, a difference, an interval and a p-value, in every table the suite writes."""

from __future__ import annotations

import math

MISSING = "—"


def _missing(v) -> bool:
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def pct(v, signed: bool = False, digits: int = 1) -> str:
    """A rate or a difference of rates (0..1) in percent or points: 23.4, +1.8."""
    if _missing(v):
        return MISSING
    return f"{100 * float(v):{'+' if signed else ''}.{digits}f}"


def interval(low, high, signed: bool = False, digits: int = 1) -> str:
    """A 95% interval of rates in percent or points: [19.9, 27.3]."""
    return f"[{pct(low, signed, digits)}, {pct(high, signed, digits)}]"


def number(v, signed: bool = False, digits: int = 4) -> str:
    """A measured quantity that is not a rate (an action error): 0.0835, +0.4870."""
    return MISSING if _missing(v) else f"{float(v):{'+' if signed else ''}.{digits}f}"


def pvalue(p, bound: float | None = None) -> str:
    """A p-value to two significant digits; below `bound` (a bootstrap's resolution) as a bound, never 0."""
    if _missing(p):
        return MISSING
    return f"<{bound:g}" if bound is not None and p < bound else f"{float(p):.2g}"
