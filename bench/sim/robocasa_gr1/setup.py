"""`bench setup robocasa-gr1`: make the GR1 backend's own Python environment and record it.

LIBERO pins robosuite 1.4 / MuJoCo 2.3 / numpy 1.26; RoboCasa GR1 needs robosuite 1.5 / MuJoCo 3.3 /
numpy 2.2, so its sim workers run in a venv of their own. The venv holds praxis-robocasa-gr1 and
msgpack; the worker code comes from this package through a one-link PYTHONPATH (bench/sim/process.py),
so it is never stale. The object assets (about 5 GB) are a separate download: `--assets DIR` points
the backend at them; `--standin` writes a small generated pack instead (primitive shapes under the
file names the tasks load: for tests and trying the path offline; results say so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from bench.sim.backend import STATE_DIR, get_backend

PACKAGES = ("praxis-robocasa-gr1==0.2.0", "msgpack>=1")
CHECK = "import msgpack, robocasa_gr1.environments.tabletop.tabletop_24dc, robosuite, mujoco, numpy; print('ok')"


class SetupError(RuntimeError):
    pass


def default_venv() -> Path:
    return STATE_DIR / "robocasa_gr1-venv"


def _run(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SetupError(f"{what} failed (exit code {code}); the last lines of {log}:\n{tail}")


def setup(venv: Path | None = None, python: str | None = None, assets: Path | None = None,
          standin: bool = False, say: Callable[[str], None] = print) -> dict:
    """Create (or reuse) the venv, install the simulator, point it at assets, write the setup record."""
    venv = Path(venv or default_venv()).resolve()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log = STATE_DIR / "robocasa_gr1-setup.log"
    py = venv / "bin" / "python"
    if not py.exists():
        say(f"creating a Python environment in {venv}")
        _run([python or sys.executable, "-m", "venv", str(venv)], log, "creating the venv")
    say(f"installing {' '.join(PACKAGES)} (log: {log})")
    _run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", *PACKAGES], log,
         "installing the GR1 simulator")
    _run([str(py), "-c", CHECK], log, "importing the GR1 simulator in its environment")
    from bench.sim.process import source_path
    from bench.sim.robocasa_gr1 import assets as asset_pack

    record_path = get_backend("robocasa_gr1").setup_record()
    if assets is None and not standin and record_path.is_file():  # a re-run keeps the assets it was pointed at
        previous = json.loads(record_path.read_text()).get("assets")
        assets = Path(previous) if previous else None
    if standin and assets is None:
        assets = STATE_DIR / "robocasa_gr1-standin-assets"
    if assets is not None:
        assets = Path(assets).resolve()
        if standin:
            say(f"writing the stand-in asset pack to {assets} (primitive shapes, not the real assets)")
            env = dict(os.environ, PYTHONPATH=str(source_path(get_backend("robocasa_gr1"))))
            with open(log, "a") as f:  # it reads the package's own registries, so it runs in the GR1 environment
                code = subprocess.run([str(py), "-m", "bench.sim.robocasa_gr1.assets", "standin", str(assets)],
                                      env=env, stdout=f, stderr=subprocess.STDOUT).returncode
            if code != 0:
                raise SetupError(f"writing the stand-in assets failed (exit code {code}): see {log}")
        asset_pack.check(assets)  # raises naming what is missing
    versions = json.loads(subprocess.run(
        [str(py), "-c", "import json; from importlib import metadata as m; print(json.dumps({p: m.version(p) for p "
                        "in ('praxis-robocasa-gr1', 'praxis-robosuite', 'mujoco', 'numpy')}))"],
        capture_output=True, text=True, check=True).stdout)
    kind = None if assets is None else "standin" if asset_pack.is_standin(assets) else "user"
    record = {"python": str(py), "venv": str(venv), "assets": str(assets) if assets else None,
              "assets_kind": kind, "versions": versions,
              "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    say(f"recorded in {record_path}")
    return record
