"""Float math: provenance names what can change a float; portable mode is in force or refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.core import mathmode

# The bundled checkpoint's actions on bench.perf.mathprobe's fixed observations in portable mode. The first bundled
# checkpoint's digest was computed on an AMD EPYC (Zen 3, AVX2 only) and held on AVX-512 Xeons; this one (the
# retrained checkpoint) on an AVX-512 Xeon. Portable mode promises the same bits on any x86-64 CPU with AVX2,
# so a machine where this test fails has found where that promise breaks.
PORTABLE_DIGEST_4_CALLS = "83e95ab62b2a2c38"


def test_describe_names_everything_that_can_change_a_float():
    import torch  # noqa: F401  (the description reads torch's state)

    d = mathmode.describe("native")
    assert d["cpu"]["model"] and d["cpu"]["arch"] and isinstance(d["cpu"]["isa"], list)
    assert set(d["cpu"]["isa"]) <= set(mathmode.ISA_FLAGS)
    assert d["torch"]["cpu_capability"] in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "NO AVX")
    assert d["torch"]["threads"] >= 1 and d["torch"]["interop_threads"] >= 1
    assert d["libraries"]["blas"] and d["libraries"]["onednn"] and "mkl_cbwr" in d["libraries"]
    assert "gpu" in d and set(d["env"]) == set(mathmode.ENV_KEYS)
    assert d["id"].startswith("native:") and len(d["id"]) == len("native:") + 8
    # the fingerprint moves with anything that decides the bits
    other = json.loads(json.dumps(d))
    other["torch"]["threads"] += 1
    assert mathmode.math_id(other) != d["id"]
    other = json.loads(json.dumps(d))
    other["cpu"]["isa"] = ["avx2", "avx512f"]
    assert mathmode.math_id(other) != d["id"]  # native math depends on the CPU...
    portable = {**json.loads(json.dumps(d)), "mode": "portable"}
    moved = json.loads(json.dumps(portable))
    moved["cpu"] = {"model": "another", "vendor": "GenuineIntel", "arch": "x86_64", "isa": ["avx2", "avx512f"]}
    assert mathmode.math_id(moved) == mathmode.math_id(portable)  # ...portable math is meant not to


def test_unknown_mode_names_the_valid_ones():
    with pytest.raises(mathmode.MathModeError, match="valid: portable, native"):
        mathmode.validate("fast")
    assert mathmode.mode_of(None) == "native" and mathmode.mode_of("portable:12345678") == "portable"


avx2 = pytest.mark.skipif("avx2" not in mathmode.cpu_info()["isa"], reason="portable math needs AVX2")


def _probe(mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.perf.mathprobe", "--mode", mode, "--calls", "4", "--repeats", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@avx2
def test_portable_mode_is_in_force_and_gives_the_committed_bits():
    p = _probe("portable")
    assert p["math"]["torch"]["cpu_capability"] == "AVX2" and p["math"]["torch"]["threads"] == 1
    assert p["math"]["libraries"]["mkl_cbwr"]["branch"] == "COMPATIBLE"
    assert p["math"]["torch"]["mkldnn_enabled"] is False and p["stable_within_process"]
    assert p["actions_digest"] == PORTABLE_DIGEST_4_CALLS, (
        f"portable actions on {mathmode.summary_line(p['math'])} differ from the committed ones")


@avx2
def test_portable_mode_is_refused_when_torch_already_did_math():
    code = ("import torch; a = torch.randn(64, 64); a @ a\n"
            "from bench.core import mathmode; mathmode.apply('portable'); mathmode.check('portable')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "portable math is not in force" in proc.stderr and "MKL's code branch" in proc.stderr
