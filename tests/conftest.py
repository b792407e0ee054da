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
