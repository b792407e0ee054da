"""Split manifests: what a training set contains, and what each zero-shot suite changes of it.

Two kinds of data file, both in the package:
- `bench/sim/splits/training/<suite>.json`: a training set's tasks, and per object type its category, the most
  instances one scene holds and how many tasks use it (derived from the suite's BDDL files by
  `bench.sim.libero.zeroshot.training_manifest`, so it cannot drift from what training sees);
- the `split` section and each task's `base` and `change` in a zero-shot suite's `suite.json`
  (`bench/sim/libero/suites/<suite>/`): the kind of split, the training set, and per task which object
  was changed into what.

`violations` says what a zero-shot suite shows that its training set already contains (tested to be
nothing); `describe` is the manifest a result table prints.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TRAINING = Path(__file__).resolve().parent / "training"


@lru_cache(maxsize=None)
def training_manifest(suite: str) -> dict:
    path = TRAINING / f"{suite}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no training manifest for {suite} ({path}); "
                                f"valid: {', '.join(sorted(p.stem for p in TRAINING.glob('*.json')))}")
    return json.loads(path.read_text())


@lru_cache(maxsize=None)
def split_of(suite_name: str) -> dict | None:
    """The split section and per-task changes of a zero-shot suite, or None for any other suite."""
    from bench.sim.suites import get_suite

    suite = get_suite(suite_name)
    if suite.backend != "libero" or not suite.source.startswith("data:"):
        return None
    from bench.sim.libero.data_suites import ROOT

    data = json.loads((ROOT / suite.source.removeprefix("data:") / "suite.json").read_text())
    if "split" not in data:
        return None
    return {**data["split"], "tasks": {t["name"]: {"base": t["base"], "change": t["change"]} for t in data["tasks"]}}


def violations(suite_name: str) -> list[str]:
    """What the suite shows that its training set already holds: for an object split, a new instance the
    training set contains (or of a category it lacks); for a category split, a category it contains; for a
    quantity split, a count of the target no larger than a training scene holds. Empty when the split is sound."""
    split = split_of(suite_name)
    if split is None:
        return [f"{suite_name} is not a zero-shot suite"]
    train = training_manifest(split["trained_on"])
    objects, categories = train["objects"], set(train["categories"])
    bad = []
    for task, t in split["tasks"].items():
        c = t["change"]
        if t["base"]["task"] not in train["tasks"]:
            bad.append(f"{task}: its base task {t['base']['task']} is not in {split['trained_on']}")
        if split["kind"] == "object":
            if c["to"] in objects:
                bad.append(f"{task}: {c['to']} is in the training set")
            if c["to_category"] not in categories:
                bad.append(f"{task}: {c['to']}'s category {c['to_category']} is not in the training set")
        elif split["kind"] == "category":
            if c["to_category"] in categories:
                bad.append(f"{task}: category {c['to_category']} ({c['to']}) is in the training set")
        elif split["kind"] == "quantity":
            seen = objects.get(c["to"], {}).get("max_count", 0)
            if c["count"] <= seen:
                bad.append(f"{task}: {c['count']} x {c['to']}, but a training scene already holds {seen}")
        else:
            bad.append(f"{task}: unknown split kind {split['kind']!r}")
    return bad


def describe(suite_name: str) -> str | None:
    """The manifest a result table prints: the split, the training set, and each task's change."""
    split = split_of(suite_name)
    if split is None:
        return None
    lines = [f"Zero-shot {split['kind']} split of {split['trained_on']}: {split['what']}. Training manifest: "
             f"{split['training_manifest']}.", "", "| task | varies | change |", "| --- | --- | --- |"]
    for task, t in split["tasks"].items():
        c = t["change"]
        change = (f"{c['from']} ({c['from_category']}) -> {c['to']} ({c['to_category']})" if c["from"] != c["to"]
                  else f"{c['count']} x {c['to']}")
        lines.append(f"| {task} | {t['base']['task']} | {change} |")
    return "\n".join(lines)
