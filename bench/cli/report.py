"""`bench report`."""

from __future__ import annotations

from pathlib import Path

import typer

from bench.cli.common import app, console, fail


@app.command()
def report(
    results: Path = typer.Option(Path("results"), help="The results folder to report."),
    out: Path = typer.Option(Path("reports/report.pdf"), help="The PDF; its markdown twin and figures go beside it."),
):
    """One PDF with every result, beside the published numbers, with each file's provenance."""
    from bench.report.build import build

    if not results.is_dir():
        fail(f"--results {results}: no such folder")
    if out.suffix != ".pdf":
        fail(f"--out {out}: give a .pdf path")
    data = build(results, out)
    console.print(f"wrote {out} and {out.with_suffix('.md')}: {len(data['sections'])} sections, "
                  f"{len(data['not_run'])} not run yet")
    for x in data["not_built"]:
        console.print(f"[yellow]not built:[/] {x['what']}: {x['error']}")
