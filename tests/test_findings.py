"""The findings page answers each question from the results by one rule: significant and the paper's sign is
supported, significant and the other sign refuted, anything else unresolved; near the floor is said."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _table(rate_a, rate_b, diff, p):
    return pd.DataFrame([{"suite": "s", "task_id": None, "task": "ALL", "a:success_rate": rate_a, "b:success_rate": rate_b,
                          "b:episodes": 100, "vs_b:diff": diff, "vs_b:diff_low": diff - 0.05, "vs_b:diff_high": diff + 0.05,
                          "vs_b:mcnemar_p": p, "vs_b:mdd": 0.1}])


@pytest.mark.parametrize("rate_a, rate_b, diff, p, answer", [
    (0.5, 0.3, 0.2, 0.001, "supported"),
    (0.3, 0.5, -0.2, 0.001, "refuted"),
    (0.5, 0.45, 0.05, 0.4, "unresolved"),
    (0.04, 0.01, 0.03, 0.01, "supported (both near the floor)"),
    (0.02, 0.01, 0.01, 0.6, "unresolved (both near the floor)"),
])
def test_the_answer_rule(rate_a, rate_b, diff, p, answer):
    from bench.studies.findings import _paired

    f = _paired(_table(rate_a, rate_b, diff, p), "a", "b", "q?", "claim", "budget", "src")
    assert f.answer == answer
    assert f.effect == f"{100 * diff:+.1f} [{100 * (diff - 0.05):+.1f}, {100 * (diff + 0.05):+.1f}]"


def test_the_report_opens_with_the_findings_of_the_committed_results(tmp_path):
    from bench.report.build import _sections

    sections, broken = _sections(ROOT / "results", tmp_path)
    assert not broken and sections[0].title == "Findings"
    table = next(b for b in sections[0].blocks if b["kind"] == "table")
    questions = [r[0] for r in table["rows"]]
    assert any("libero_spatial" in q and "GR00T-style" in q for q in questions)
    assert any("GR1 proxy" in q for q in questions) and any("zero-shot" in q for q in questions)
    assert all(r[2].split(" ")[0] in ("supported", "refuted", "unresolved", "measured:") for r in table["rows"])
