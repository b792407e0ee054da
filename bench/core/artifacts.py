"""One way a result's markdown carries its provenance: every writer ends its .md with `provenance_block`, and
commands that print a result show it without that block (`without_provenance`)."""

from __future__ import annotations

import json

HEADING = "## Provenance"


def provenance_block(provenance: dict, sort_keys: bool = False) -> str:
    """The closing section of a result's markdown: its provenance as JSON."""
    return f"{HEADING}\n\n```json\n{json.dumps(provenance, indent=2, sort_keys=sort_keys)}\n```\n"


def with_provenance(body: str, provenance: dict, sort_keys: bool = False) -> str:
    """A result's markdown: its body, then its provenance."""
    return body.rstrip("\n") + "\n\n" + provenance_block(provenance, sort_keys)


def without_provenance(markdown: str) -> str:
    """A result's markdown as a command prints it: everything before its provenance."""
    return markdown.split(HEADING)[0]
