"""Pick a headless OpenGL backend before any simulator is imported.

Peers' users lose hours to silent EGL hangs. We probe each backend in a child
process with a time limit (EGL first, then OSMesa) and say exactly what is
missing when none works. The choice is stored in the environment so sim workers
(spawned processes) inherit it.
"""

from __future__ import annotations

import os
import subprocess
import sys

_PROBE = """
import os
from robosuite.renderers.context.{module} import {cls} as Ctx
import mujoco
ctx = Ctx(max_width=16, max_height=16)
ctx.make_current()
print("ok")
"""
_BACKENDS = {
    "egl": ("egl_context", "EGLGLContext", "Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri"),
    "osmesa": ("osmesa_context", "OSMesaGLContext", "Debian: apt-get install libosmesa6"),
}


class HeadlessGLError(RuntimeError):
    pass


def probe(backend: str, timeout_s: float = 60.0) -> tuple[bool, str]:
    """Try to create a GL context with `backend` in a child process."""
    module, cls, _ = _BACKENDS[backend]
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module, cls=cls)],
            env=env, capture_output=True, text=True, timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout_s:.0f} s creating a context (a hung driver)"
    if out.returncode == 0 and "ok" in out.stdout:
        return True, "ok"
    lines = (out.stderr or out.stdout).strip().splitlines()
    return False, lines[-1] if lines else f"exit code {out.returncode}"


def configure_headless_gl() -> str:
    """Set MUJOCO_GL / PYOPENGL_PLATFORM to a working headless backend and return it."""
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:  # the user decided; respect it
        os.environ.setdefault("PYOPENGL_PLATFORM", chosen if chosen in _BACKENDS else "")
        return chosen
    failures = []
    for backend in ("egl", "osmesa"):
        ok, why = probe(backend)
        if ok:
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            return backend
        failures.append(f"  {backend}: {why}\n    to fix: {_BACKENDS[backend][2]}")
    raise HeadlessGLError(
        "no headless OpenGL backend works, so the simulator cannot render cameras.\n"
        + "\n".join(failures)
        + "\nOr set MUJOCO_GL yourself (egl, osmesa, glx) if you know which one this machine has."
    )
