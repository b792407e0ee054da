"""`bench results`: the committed results as studies (plan, check, rebuild)."""

from __future__ import annotations

from typing import Optional

import typer
from bench.cli.common import app, console, err, fail, name_table


@app.command()
def results(
    name: Optional[str] = typer.Argument(None, help="A study to rebuild (bench results --plan lists them)."),
    show_plan: bool = typer.Option(False, "--plan", help="List every study: up to date, or what is stale and what "
                                                         "rebuilding it would cost."),
    check_: bool = typer.Option(False, "--check", help="Recompute every study's tables from its committed records; "
                                                       "exit 1 on any difference."),
    lock: bool = typer.Option(False, "--lock", help="Record the studies' current input and output hashes (after "
                                                    "--check passes)."),
    kind: Optional[str] = typer.Option(None, help="Only studies of this kind (evaluation, comparison, table, "
                                                  "curves, measurement, ablation)."),
    as_json: bool = typer.Option(False, "--json", help="With --plan: one JSON list of records (for scripts)."),
):
    """Every committed result is a study, declared once: what it needs, how it is built, where the report shows it."""
    from bench.studies import check, plan, studies, write_lock

    found = studies()
    if kind is not None:
        kinds = sorted({s.kind for s in found})
        if kind not in kinds:
            fail(f"--kind {kind!r}: valid {', '.join(kinds)}")
        found = [s for s in found if s.kind == kind]
    if name is not None:
        by_name = {s.name: s for s in found}
        if name not in by_name:
            import difflib

            close = difflib.get_close_matches(name, list(by_name), n=3, cutoff=0.4)
            fail(f"unknown study {name!r}" + (f"; did you mean {', '.join(close)}?" if close else "")
                 + " (bench results --plan lists them)")
        study = by_name[name]
        try:
            study.build(study, lambda line: console.print(line, highlight=False))
        except NotImplementedError as exc:
            fail(str(exc))
        write_lock([study])
        console.print(f"rebuilt {name}: {', '.join(study.outputs)}")
        return
    if check_:
        diffs = check(found, log=lambda line: console.print(line, highlight=False))
        bad = {k: v for k, v in diffs.items() if v}
        for study, lines in bad.items():
            for line in lines[:20]:
                err.print(f"[red]{study}[/]: {line}", highlight=False)
        skipped = [s for s in found if s.recompute is None]
        console.print(f"{len(diffs) - len(bad)} of {len(diffs)} recomputable studies equal their committed records; "
                      f"{len(skipped)} not recomputable (bench results --plan says why)")
        if bad:
            raise typer.Exit(1)
        if lock:
            write_lock(found)
            console.print("lock updated")
        return
    if lock:
        fail("--lock records hashes only after --check passes: bench results --check --lock")
    if not show_plan:
        fail("say what to do: --plan, --check, or a study's name")
    rows = []
    for st in plan(found):
        s = st.study
        cost = s.cost_s()
        why = "; ".join(st.reasons) if st.reasons else (f"not recomputable: {s.not_recomputable}"
                                                         if s.not_recomputable else "")
        rows.append({"study": s.name, "kind": s.kind, "state": st.state, "why": why,
                     "rebuild cost (h)": "" if cost is None else round(cost / 3600, 1), "report section": s.section})
    if as_json:
        import json

        print(json.dumps(rows, indent=2))
        return
    console.print(name_table(rows, names=("study",)))
    counts = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    console.print(", ".join(f"{n} {state}" for state, n in counts.items()))
