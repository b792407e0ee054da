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

from bench.core.registry import Registry, import_plugins

# Modules that register policies when imported; later model packages add themselves here.
POLICY_MODULES = ["bench.policies.builtin", "bench.policies.replay", "bench.policies.scripted",
                  "bench.policies.remote"]


@dataclass(frozen=True)
class PolicyArg:
    """A policy argument given as `--policy-arg name=value` (typed, with a default)."""
    name: str
    type: type  # int, float, str or bool
    default: Any
    help: str = ""

    def parse(self, text: str) -> Any:
        if self.type is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.name} takes true or false, got {text!r}")
        try:
            return self.type(text)
        except ValueError:
            raise ValueError(f"{self.name} takes {self.type.__name__}, got {text!r}") from None

    def describe(self) -> str:
        return f"{self.name}: {self.type.__name__} = {self.default!r}" + (f" ({self.help})" if self.help else "")


@dataclass(frozen=True)
class PolicyEntry:
    name: str
    factory: Callable[..., Any]
    help: str
    options: tuple[str, ...]  # the fixed command-line options the factory accepts (--checkpoint, --demos, --seed)
    args: tuple[PolicyArg, ...] = ()  # its --policy-arg arguments


POLICIES: Registry[PolicyEntry] = Registry("policy")
_loaded = False


def register(name: str, factory: Callable[..., Any], help: str, options: tuple[str, ...] = (),
             args: tuple[PolicyArg, ...] = ()) -> None:
    POLICIES.add(name, PolicyEntry(name, factory, help, options, args))


def parse_policy_args(entry: PolicyEntry, items: list[str]) -> dict[str, Any]:
    """`name=value` strings -> typed keyword arguments; an unknown or ill-typed one is a ValueError naming the
    valid arguments."""
    known = {a.name: a for a in entry.args}
    valid = "; ".join(a.describe() for a in entry.args) or "none"
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--policy-arg takes NAME=VALUE, got {item!r}; {entry.name} takes: {valid}")
        if name not in known:
            raise ValueError(f"policy {entry.name!r} has no argument {name!r}; it takes: {valid}")
        out[name] = known[name].parse(value)
    return out


def load_all() -> Registry[PolicyEntry]:
    global _loaded
    if not _loaded:
        _loaded = True
        import_plugins(POLICY_MODULES, "dit4dit_bench.policies")
        from bench.policies.trained import register_models

        register_models()  # every trainable model (bench/models/registry.py), served from its checkpoints
    return POLICIES


def make_policy(name: str, policy_args: list[str] | dict | None = None, **options):
    """Build a policy by name; options left as None are not passed. `policy_args`: `--policy-arg` strings
    (or already typed values), checked against the policy's declared arguments."""
    entry = load_all().get(name)
    given = {k: v for k, v in options.items() if v is not None}
    extra = sorted(set(given) - set(entry.options) - {"seed"})
    if extra:
        takes = ", ".join(f"--{o}" for o in entry.options) or "no options"
        raise ValueError(f"policy {entry.name!r} does not use {', '.join('--' + o for o in extra)} (it takes {takes})")
    kwargs = {k: v for k, v in given.items() if k in entry.options or k == "seed"}
    if policy_args:
        typed = (parse_policy_args(entry, policy_args) if isinstance(policy_args, list)
                 else parse_policy_args(entry, [f"{k}={v}" for k, v in policy_args.items()]))
        kwargs.update(typed)
    return entry.factory(**kwargs)
