"""The findings page: each question the suite asks, answered from the committed studies at their budget.

Every answer is one of
  supported    the paired test is significant and the effect has the paper's sign,
  refuted      the paired test is significant and the effect has the other sign,
  unresolved   not significant: the smallest difference the episodes could detect says how large an effect could
               hide; "near the floor" when both arms succeed less than FLOOR of the time.
Nothing here is typed by hand: effects, intervals, p-values and budgets are read from the results files; the
paper's claims are stated in words beside the published table they come from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from bench.analysis.format import interval, pct, pvalue

ALPHA = 0.05
FLOOR = 0.10  # both arms below this success rate: a comparison there says nothing about the question
NAMES = {"dit4dit": "DiT4DiT", "groot": "GR00T-style", "flare": "FLARE-style", "pi05": "pi0.5-style"}


@dataclass
class Finding:
    question: str
    claim: str  # what the paper reports, in words, with the published table it comes from
    answer: str  # supported, refuted, unresolved
    effect: str  # A - B in points with its 95% interval
    p: str
    detectable: str  # the smallest difference the episodes detect with 80% power
    budget: str
    source: str  # the results file the row is read from


def _budget(results: Path, models: tuple[str, ...], subfolder: str = "") -> str:
    """The compared models' training budget, in samples (one number when they share it) and CPU-hours each, from
    their committed train_config.json and losses.csv (CPU-hours: logged training seconds x the machine's cores)."""
    from bench.train.curves import elapsed_at

    samples, hours = {}, {}
    for m in models:
        path = results / m / subfolder / "train_config.json"
        if not path.exists():
            return "—"
        config = json.loads(path.read_text())
        samples[m] = config["train"]["steps"] * config["train"]["batch_size"]
        seconds = elapsed_at(results / m / subfolder / "losses.csv")
        cores = (config.get("provenance") or {}).get("machine", {}).get("cpus")
        hours[m] = "?" if seconds is None or not cores else f"{seconds * cores / 3600:.1f}"
    shared = len(set(samples.values())) == 1
    size = (f"{next(iter(samples.values())):,} samples each" if shared
            else "samples " + ", ".join(f"{m} {n:,}" for m, n in samples.items()))
    return f"{size}; CPU-h " + ", ".join(f"{m} {h}" for m, h in hours.items())


def _answer(row: pd.Series, pre: str, a: str, b: str) -> str:
    floor = row[f"{a}:success_rate"] < FLOOR and row[f"{b}:success_rate"] < FLOOR
    if row[pre + "mcnemar_p"] < ALPHA:
        return ("supported" if row[pre + "diff"] > 0 else "refuted") + (" (both near the floor)" if floor else "")
    return "unresolved (both near the floor)" if floor else "unresolved"


def _paired(table: pd.DataFrame, a: str, b: str, question: str, claim: str, budget: str, source: str) -> Finding:
    row = table[table["task"] == "ALL"].iloc[0]
    pre = f"vs_{b}:"
    return Finding(question, claim, _answer(row, pre, a, b),
                   f"{pct(row[pre + 'diff'], True)} {interval(row[pre + 'diff_low'], row[pre + 'diff_high'], True)}",
                   pvalue(row[pre + "mcnemar_p"]), pct(row[pre + "mdd"]), budget, source)


def baseline_findings(results: Path) -> list[Finding]:
    """DiT4DiT against each baseline, libero_spatial and the GR1 proxy (paired over the same episodes)."""
    out = []
    for csv, what, subfolder, claim in (
            ("baselines/libero_spatial_comparison.csv", "libero_spatial", "",
             "above GR00T N1.5 and pi0.5 on LIBERO"),
            ("gr1/gr1_tabletop_proxy_comparison.csv", "GR1 proxy", "gr1_proxy_train",
             "above GR00T N1.5 on RoboCasa GR1")):
        path = results / csv
        if not path.exists():
            continue
        table = pd.read_csv(path)
        for b in ("groot", "flare", "pi05"):
            if f"vs_{b}:diff" in table:
                episodes = int(table[table["task"] == "ALL"].iloc[0][f"{b}:episodes"])
                out.append(_paired(table, "dit4dit", b, f"DiT4DiT > {NAMES[b]}, {what}", claim,
                                   f"{_budget(results, ('dit4dit', b), subfolder)}; {episodes} ep.", csv))
    return out


def zeroshot_findings(results: Path) -> list[Finding]:
    """DiT4DiT against GR00T-style on each zero-shot split, paired over the split's episodes."""
    from bench.analysis.compare import compare, load_summary

    out = []
    splits = sorted(p.name[:-len("_summary.json")] for p in (results / "dit4dit").glob("libero_spatial_*_summary.json"))
    for split in splits:
        a, b = results / "dit4dit" / f"{split}_summary.json", results / "groot" / f"{split}_summary.json"
        if not b.exists():
            continue
        table = compare([load_summary(a, "dit4dit"), load_summary(b, "groot")])
        episodes = int(table[table["task"] == "ALL"].iloc[0]["dit4dit:episodes"])
        shown = split.replace("libero_spatial_zeroshot_", "zero-shot ").replace("libero_spatial_", "LIBERO-PRO ")
        out.append(_paired(table, "dit4dit", "groot", f"DiT4DiT > GR00T-style, {shown}",
                           "above GR00T N1.5 on unseen objects, categories, quantities",
                           f"{_budget(results, ('dit4dit', 'groot'))}; {episodes} ep.",
                           f"dit4dit/{split}_summary.json, groot/{split}_summary.json"))
    return out


ABLATION_CLAIMS = {
    "feature_timestep": "one fixed feature timestep, the one it reports best",
    "feature_layer": "an intermediate block best; early and late blocks far worse",
    "data_fraction": "video generation over 10x more sample-efficient than FLARE-style",
}


def ablation_findings(results: Path) -> list[Finding]:
    """Does any setting of an ablation axis differ from the default? (the committed small-budget tables)"""
    out = []
    for name, claim in ABLATION_CLAIMS.items():
        path = results / "ablations" / f"{name}.csv"
        if not path.exists():
            continue
        t = pd.read_csv(path)
        t = t[t["model"] == "dit4dit"]
        if t.empty:
            continue
        rates = t["successes"] / t["episodes"]
        significant = t[t["success_holm_p"] < ALPHA] if "success_holm_p" in t else t.iloc[:0]
        low, high = int(t["successes"].min()), int(t["successes"].max())
        episodes = int(t["episodes"].max())
        if not len(significant):
            answer = "unresolved (every setting near the floor)" if rates.max() < FLOOR else "unresolved"
        else:
            answer = "measured: " + ", ".join(f"{v} differs from the default" for v in significant["value"])
        spread = f"{low} of {episodes} in every setting" if low == high else \
            f"{low}-{high} of {episodes} per setting"
        out.append(Finding(f"DiT4DiT {name.replace('_', ' ')}: does it matter?", claim, answer, spread,
                           "—", "—",
                           (f"{int(t['step'].max()):,} steps; " if "step" in t else "")
                           + f"{episodes} ep. per setting",
                           f"ablations/{name}.csv"))
    return out


def findings(results: Path) -> list[Finding]:
    return baseline_findings(results) + zeroshot_findings(results) + ablation_findings(results)


PUBLISHED = "libero_published.csv, gr1_published.csv, zero_shot_published.csv, dit4dit_ablations_published.csv, " \
    "dit4dit_efficiency_published.csv (bench/published/)"


def findings_table(results: Path) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and sources (the results files, in row order) for the report."""
    rows = findings(results)
    header = ["question", "the paper (DiT4DiT)", "answer here", "effect, points [95% CI]", "p", "detectable",
              "budget"]
    return header, [list(asdict(f).values())[:-1] for f in rows], [f.source for f in rows]
