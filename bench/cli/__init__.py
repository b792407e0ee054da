"""`bench`: the command line. Thin: parse, validate (exit 2 with the valid choices on bad input),
call the library, print. One module per command group; each registers its commands on `app`."""

from __future__ import annotations

from bench.cli import ablate, analyze, demos, evaluate, lint, perf, report, results, serve, setup, train  # noqa: F401  (register)
from bench.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app(prog_name="bench")
