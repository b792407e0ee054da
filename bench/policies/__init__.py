"""Registry of policies by name.

A policy module registers a factory with `register("name", factory, help=...)`.
Factories take keyword options (`checkpoint`, `demos`, `seed`) and ignore none
silently: an option a policy cannot use is an error naming the options it takes.
Third-party policies register through the entry-point group `dit4dit_bench.policies`
(each entry point is a module to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bench.registry import Registry, import_plugins

# Modules that register policies when imported; later model packages add themselves here.
POLICY_MODULES = ["bench.policies.builtin", "bench.policies.replay", "bench.policies.scripted"]


@dataclass(frozen=True)
class PolicyEntry:
    name: str
    factory: Callable[..., Any]
    help: str
    options: tuple[str, ...]  # keyword options the factory accepts


POLICIES: Registry[PolicyEntry] = Registry("policy")
_loaded = False


def register(name: str, factory: Callable[..., Any], help: str, options: tuple[str, ...] = ()) -> None:
    POLICIES.add(name, PolicyEntry(name, factory, help, options))


def load_all() -> Registry[PolicyEntry]:
    global _loaded
    if not _loaded:
        _loaded = True
        import_plugins(POLICY_MODULES, "dit4dit_bench.policies")
        from bench.policies.trained import register_models

        register_models()  # every trainable model (bench/models/registry.py), served from its checkpoints
    return POLICIES


def make_policy(name: str, **options):
    """Build a policy by name; options left as None are not passed."""
    entry = load_all().get(name)
    given = {k: v for k, v in options.items() if v is not None}
    extra = sorted(set(given) - set(entry.options) - {"seed"})
    if extra:
        takes = ", ".join(f"--{o}" for o in entry.options) or "no options"
        raise ValueError(f"policy {entry.name!r} does not use {', '.join('--' + o for o in extra)} (it takes {takes})")
    return entry.factory(**{k: v for k, v in given.items() if k in entry.options or k == "seed"})
