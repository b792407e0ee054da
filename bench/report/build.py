"""Build the report: sections from the results, a PDF through Typst (reports/report.typ), a markdown twin.

Why Typst: a real typesetter (tables that break across pages, captions, an outline, embedded fonts) whose
compiler ships inside a Python wheel (`typst`), so the report builds offline with no system install. The
template only lays out what `data.json` holds; every word and number in it is produced here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.report import gather

TEMPLATE = Path(__file__).resolve().parents[2] / "reports" / "report.typ"
TITLE = "dit4dit-bench report"
NOTHING_MISSING = "Everything the suite measures has results."  # 'Not run yet' when nothing is missing


def _sections(results: Path, figures: Path) -> tuple[list[gather.Section], list[dict]]:
    """Every section that has results; the ones whose files are broken are listed, not built."""
    published = Path(__file__).resolve().parents[1] / "published" / "libero_published.csv"
    builders = [
        ("Findings", lambda: gather.findings_section(results)),
        ("LIBERO", lambda: gather.libero_section(results, published, figures)),
        ("Comparisons", lambda: gather.comparisons_section(results)),
        ("Ablations", lambda: gather.ablations_section(results)),
        ("Zero-shot splits", lambda: gather.zeroshot_section(results)),
        ("RoboCasa GR1 tabletop (proxy)", lambda: gather.gr1_section(results)),
        ("Training", lambda: gather.training_section(results)),
        ("Expert and demonstrations", lambda: gather.expert_and_demos_section(results)),
        ("Throughput and latency", lambda: gather.perf_section(results, figures)),
        ("Contact sheets", lambda: gather.contact_sheets_section(results)),
    ]
    sections, broken = [], []
    for name, build in builders:
        try:
            sec = build()
        except (gather.ResultFileError, KeyError, ValueError, TypeError, IndexError) as exc:
            broken.append({"what": name, "error": str(exc)})
            continue
        if sec is not None:
            sections.append(sec)
    return sections, broken


def _cover(results: Path, sections: list[gather.Section], git: dict) -> dict:
    from bench.core.provenance import package_versions

    hashes = set()
    for sec in sections:
        for path in sec.sources:
            if path.suffix == ".json":
                try:
                    h = (json.loads(path.read_text()).get("provenance") or {}).get("protocol_hash")
                except (OSError, json.JSONDecodeError):
                    h = None
                if h:
                    hashes.add(h)
    versions = package_versions()
    return {
        "summary": "A benchmark-and-ablation suite for robot manipulation policies built around DiT4DiT. This report "
                   "is generated from the committed results files by `bench report`: every number comes from a "
                   "file whose provenance (command, commit, package versions) is listed in the appendix. The learned "
                   "policies measured here are tiny models trained from scratch on two CPU cores, reported beside "
                   "the published full-scale numbers, never as a reproduction of them.",
        "facts": [["commit", (git.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")],
                  ["built", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")],
                  ["results", str(results)],
                  ["protocol hashes", ", ".join(sorted(hashes)) or "—"],
                  ["packages", ", ".join(f"{k} {v}" for k, v in versions.items())]],
    }


def collect(results: Path, figures: Path, git: dict | None = None) -> dict:
    from bench.core.provenance import git_state

    git = git or git_state()
    figures.mkdir(parents=True, exist_ok=True)
    sections, broken = _sections(results, figures)
    sources = [p for s in sections for p in s.sources]
    return {"title": TITLE, "cover": _cover(results, sections, git),
            "sections": [{"title": s.title, "blocks": s.blocks} for s in sections],
            "not_run": gather.not_run(results), "nothing_missing": NOTHING_MISSING, "not_built": broken,
            "provenance": gather.provenance_rows(sources)}


def markdown(data: dict, base: Path) -> str:
    """The report as markdown (figures linked relative to `base`, the markdown file's folder)."""
    out = [f"# {data['title']}", "", data["cover"]["summary"], "",
           pd.DataFrame(data["cover"]["facts"], columns=["", " "]).to_markdown(index=False), ""]
    for i, sec in enumerate(data["sections"], 1):
        out += [f"## {i}. {sec['title']}", ""]
        for b in sec["blocks"]:
            if b["kind"] == "text":
                out += [b["text"], ""]
            elif b["kind"] == "table":
                out += [pd.DataFrame(b["rows"], columns=b["header"]).to_markdown(index=False), "",
                        f"*{b['caption']}*" if b["caption"] else "", ""]
            else:
                rel = os.path.relpath(Path(b["path"]).resolve(), base.resolve())
                out += [f"![{b['caption']}]({rel})", "", f"*{b['caption']}*", ""]
    out += ["## Not run yet, and why", ""] + ([f"- {x['what']}: {x['why']}" for x in data["not_run"]]
                                            or [data["nothing_missing"]]) + [""]
    if data["not_built"]:
        out += ["## Not built (a results file is broken)", ""] + [f"- {x['what']}: {x['error']}"
                                                                   for x in data["not_built"]] + [""]
    out += ["## Appendix: provenance of each results file", "",
            pd.DataFrame(data["provenance"], columns=["file", "command", "commit", "created"]).to_markdown(index=False),
            ""]
    return "\n".join(out)


def build(results: Path, out: Path, template: Path = TEMPLATE) -> dict:
    """Write OUT (PDF), OUT with .md (the twin) and OUT's figures in <stem>_files/; returns the data."""
    import typst

    from bench.core.provenance import git_state

    git = git_state()  # before this build rewrites the report's own files
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = out.parent / f"{out.stem}_files"
    shutil.rmtree(figures, ignore_errors=True)
    data = collect(Path(results), figures, git)
    for sec in data["sections"]:  # absolute paths: the Typst root is "/" so that results and figures both resolve
        for b in sec["blocks"]:
            if b["kind"] == "figure":
                b["path"] = str(Path(b["path"]).resolve())
    with tempfile.TemporaryDirectory() as tmp:  # the layout's input: absolute paths, so not kept beside the PDF
        data_path = Path(tmp) / "data.json"
        data_path.write_text(json.dumps(data, indent=1))
        typst.compile(str(template), output=str(out), root="/", sys_inputs={"data": str(data_path.resolve())})
    out.with_suffix(".md").write_text(markdown(data, out.parent), encoding="utf-8")
    return data
