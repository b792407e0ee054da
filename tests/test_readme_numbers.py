"""The README quotes committed results; each quote must say what its record says (rounded as printed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_QUOTE = re.compile(r"`(results/[\w/]+)_summary\.md`: ([\d.]+)% \[([\d.]+), ([\d.]+)\] of (\d+)")


def test_every_quoted_success_rate_equals_its_summary():
    text = (ROOT / "README.md").read_text()
    quotes = SUMMARY_QUOTE.findall(text)
    assert len(quotes) >= 8, "the README quotes its headline summaries"
    wrong = []
    for prefix, rate, low, high, n in quotes:
        rows = json.loads((ROOT / f"{prefix}_summary.json").read_text())["rows"]
        overall = next(r for r in rows if r["task"] == "ALL")
        recorded = (f"{100 * overall['success_rate']:.1f}", f"{100 * overall['ci_low']:.1f}",
                    f"{100 * overall['ci_high']:.1f}", str(overall["episodes"]))
        if (rate, low, high, n) != recorded:
            wrong.append(f"{prefix}: README {rate}% [{low}, {high}] of {n}, record {recorded}")
    assert not wrong, "\n".join(wrong)
