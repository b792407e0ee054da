"""Name -> object registries with helpful errors.

Suites and policies are looked up by name from the command line; a typo must say
which names exist and which one was probably meant.
"""

from __future__ import annotations

import difflib
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not registered; the message lists the valid choices."""

    def __init__(self, kind: str, name: str, choices: list[str]):
        self.kind, self.name, self.choices = kind, name, choices
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Valid choices: {', '.join(choices)}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return self.args[0]


class Registry(Generic[T]):
    """An ordered mapping of names (and aliases) to entries."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, entry: T, aliases: tuple[str, ...] = ()) -> T:
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name
        return entry

    def canonical(self, name: str) -> str:
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise UnknownNameError(self.kind, name, self.names(with_aliases=True))

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def names(self, with_aliases: bool = False) -> list[str]:
        names = list(self._entries)
        return names + list(self._aliases) if with_aliases else names

    def aliases_of(self, name: str) -> list[str]:
        return [a for a, target in self._aliases.items() if target == name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)


def import_plugins(modules: list[str], group: str) -> None:
    """Import the modules that register entries, then those third parties expose in entry-point `group`."""
    import importlib
    from importlib import metadata

    for module in modules:
        importlib.import_module(module)
    for ep in metadata.entry_points(group=group):
        importlib.import_module(ep.value)
