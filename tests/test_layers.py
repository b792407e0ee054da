"""The package's folders are layers in the order data flows (suite -> sim -> policy -> records -> tables ->
report): a module imports from its own layer or the ones below, never from a layer above."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
LAYERS = [  # lowest first
    {"core"},  # registry, records, provenance, float math
    {"sim"},  # suites, simulator workers, the pixel path
    {"models", "demos"},  # trainable models, the demo file format and dataset
    {"train"},  # the training loop, checkpoints, loss curves
    {"policies"},  # the policy contract and every policy (trained ones load checkpoints)
    {"eval"},  # evaluate, runner, verify, serve, demo making, run summaries
    {"analysis"},
    {"studies", "ablate", "worker"},
    {"report", "perf"},
    {"cli"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str | None:
    """`bench.eval.runner` -> `eval`; the package root and data folders -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "bench" else None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_every_top_level_part_of_the_package_has_a_layer():
    parts = {p.stem for p in BENCH.iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists())} - {"__init__"}
    assert parts <= set(LEVEL), f"parts without a layer: {sorted(parts - set(LEVEL))}"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for path in sorted(BENCH.rglob("*.py")):
        own = _part("bench." + ".".join(path.relative_to(BENCH).with_suffix("").parts))
        if own not in LEVEL:
            continue
        for module in _imports(path):
            dep = _part(module)
            if dep in LEVEL and LEVEL[dep] > LEVEL[own]:
                upward.append(f"{path.relative_to(BENCH.parent)} ({own}) imports {module} ({dep})")
    assert not upward, "imports up the layers:\n" + "\n".join(upward)
