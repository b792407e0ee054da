import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def gl():
    """Headless GL picked once per session (EGL here, OSMesa as fallback)."""
    from bench.sim.rendering import configure_headless_gl

    return configure_headless_gl()


@pytest.fixture
def bench_cmd():
    """The installed console script, run with the same interpreter as the tests."""
    exe = Path(sys.executable).parent / "bench"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bench.cli"]


@pytest.fixture(autouse=True)
def _restore_environ():
    """`bench run` puts its math mode in the environment (for its sim workers); in-process CLI tests
    must not leave it to the tests after them."""
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def served_dit4dit(tmp_path_factory):
    """One `bench serve --policy dit4dit` (the bundled checkpoint) for every test that talks to it: (port, log
    file, process). A 4 MiB message limit, so a test can be refused for size without sending much."""
    import subprocess

    from bench.eval.serve import free_port, wait_healthy

    port, log = free_port(), tmp_path_factory.mktemp("serve") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "serve", "--policy", "dit4dit", "--port", str(port),
                                 "--max-message-mb", "4"], stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(port, proc)
        yield port, log, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
