"""The policy process's float math: what can change a policy's bits, and a portable mode.

A rerun reproduces an episode bit for bit only if the policy computes the same bits at
every step (the simulator reproduces across x86 machines; a policy's floats need not).
On a CPU, torch's results depend on
  - ATen's SIMD kernels, picked at run time by CPU (torch's "CPU capability": AVX2 or
    AVX-512 vectors reduce in a different order, and their vector math differs in the
    last bit);
  - the code branch MKL's GEMM takes, picked by CPU model and vendor;
  - oneDNN's JIT kernels, picked by ISA and cache sizes;
  - thread counts (how reductions are split) and precision (bf16 autocast).

Modes:
  native    torch's defaults. Fastest; bit-identical reruns on the same CPU kind and
            software only.
  portable  ATen pinned to its AVX2 kernels, MKL to its COMPATIBLE branch (SSE2 without
            approximate reciprocals: the one reproducible branch MKL honours on Intel and
            AMD alike; on non-Intel CPUs it ignores a request for its AVX2 branch and runs
            AUTO), oneDNN off, one thread, fp32. Aims at the same bits on every x86-64 CPU
            with AVX2.

torch and MKL read these settings once, when they load: `apply()` sets them in the
environment before torch is imported, and `check()` (after) confirms they took effect.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

MODES = ("portable", "native")
DEFAULT_MODE = "portable"

PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN is also switched off; this bounds anything that still reaches it
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MKL_DYNAMIC": "FALSE",
}
ENV_KEYS = tuple(PORTABLE_ENV)

# CPU flags that change which kernels run (x86 /proc/cpuinfo names)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")

# MKL's CNR branch numbers (mkl_cbwr_get(MKL_CBWR_BRANCH)), as in its documentation
_CBWR_BRANCHES = {0: "OFF", 1: "BRANCH_OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1",
                  8: "SSE4_2", 9: "AVX", 10: "AVX2", 12: "AVX512", 14: "AVX512_E1", 16: "AVX512_E2",
                  17: "AVX512_E3", 18: "AVX512_E4", 19: "AVX2_E1", 20: "AVX512_E5"}
_CBWR_STRICT = 0x10000


class MathModeError(RuntimeError):
    """A math mode that cannot be had here, or did not take effect."""


def validate(mode: str) -> str:
    if mode not in MODES:
        raise MathModeError(f"unknown math mode {mode!r}; valid: {', '.join(MODES)}")
    return mode


def apply(mode: str) -> None:
    """Set the environment for `mode`. Call before torch is imported (sim workers inherit it)."""
    validate(mode)
    if mode == "native":
        return
    cpu = cpu_info()
    if cpu["arch"] not in ("x86_64", "AMD64") or "avx2" not in cpu["isa"]:
        raise MathModeError(f"portable math needs an x86-64 CPU with AVX2; this is {cpu['arch']} "
                            f"{cpu['model']!r} with {', '.join(cpu['isa']) or 'none of ' + ', '.join(ISA_FLAGS)}: "
                            "use --math native")
    os.environ.update(PORTABLE_ENV)


def check(mode: str) -> None:
    """After torch has loaded (and the policy is built): raise if `mode` is not in force, e.g.
    because torch was imported before `apply()`. Also configures the torch-side switches."""
    validate(mode)
    if mode == "native":
        return
    import torch

    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(1)
    problems = []
    cap = torch.backends.cpu.get_cpu_capability()
    if cap != "AVX2":
        problems.append(f"torch's CPU capability is {cap}, not AVX2")
    branch = mkl_cbwr()
    if branch is not None and branch["branch"] != "COMPATIBLE":
        problems.append(f"MKL's code branch is {branch['branch']}, not COMPATIBLE")
    if torch.is_autocast_enabled("cpu"):
        problems.append("CPU autocast (bf16) is on")
    if problems:
        raise MathModeError("portable math is not in force: " + "; ".join(problems) +
                            ". torch was probably loaded before the mode was set: set it first "
                            f"(bench.core.mathmode.apply) or export {' '.join(f'{k}={v}' for k, v in PORTABLE_ENV.items())}")


# ---------------------------------------------------------------------- description
@lru_cache(maxsize=1)
def cpu_info() -> dict:
    """Model, vendor, architecture and the ISA flags that matter, from /proc/cpuinfo where there is one."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():  # the first processor's lines
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    model, vendor = fields.get("model name") or platform.processor(), fields.get("vendor_id", "")
    flags = set(fields.get("flags", "").split())
    # "AMD EPYC" names both Zen 4 (family 25) and Zen 5 (family 26), whose bf16 speeds differ twofold
    generation = f"family {fields['cpu family']} model {fields['model']}" if "cpu family" in fields else ""
    return {"model": model, "vendor": vendor, "arch": platform.machine(), "cores": os.cpu_count(),
            "generation": generation, "isa": [f for f in ISA_FLAGS if f in flags]}


def _torch_lib() -> ctypes.CDLL | None:
    import torch

    path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        return ctypes.CDLL(str(path)) if path.exists() else None
    except OSError:
        return None


def mkl_cbwr() -> dict | None:
    """The MKL code branch in force (read from the MKL linked into torch), or None if it cannot be read."""
    lib = _torch_lib()
    try:
        get = lib.mkl_serv_cbwr_get  # type: ignore[union-attr]
        auto = lib.mkl_serv_cbwr_get_auto_branch  # type: ignore[union-attr]
    except AttributeError:
        return None
    get.restype, get.argtypes, auto.restype = ctypes.c_int, [ctypes.c_int], ctypes.c_int
    value = get(-1) & 0xFFFFFFFF  # MKL_CBWR_ALL: branch and flags
    return {"branch": _CBWR_BRANCHES.get(value & 0xFFFF, str(value & 0xFFFF)), "strict": bool(value & _CBWR_STRICT),
            "auto_branch": _CBWR_BRANCHES.get(auto(), str(auto()))}


def _build_versions() -> dict:
    import torch

    shown = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\d.]+(?:-Product Build \d+)?)", shown)
    dnn = re.search(r"MKL-DNN v([\d.]+)", shown)
    blas = re.search(r"BLAS_INFO=(\w+)", shown)
    return {"blas": blas.group(1) if blas else None, "mkl": mkl.group(1) if mkl else None,
            "onednn": dnn.group(1) if dnn else None}


def _gpu() -> dict | None:
    import torch

    if not torch.cuda.is_available():
        return None
    driver = None
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        pass
    return {"name": torch.cuda.get_device_name(0), "driver": driver, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}


def describe(mode: str) -> dict:
    """Everything that can change the policy process's floats, and `id`: a short fingerprint of the
    fields that decide them in this mode (equal ids: a rerun is expected to give equal bits)."""
    validate(mode)
    cpu = cpu_info()
    out: dict = {"mode": mode, "cpu": cpu, "env": {k: os.environ.get(k) for k in ENV_KEYS}}
    if "torch" in sys.modules:
        import torch

        out["torch"] = {"version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                        "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled),
                        "autocast_cpu": torch.is_autocast_enabled("cpu")}
        out["libraries"] = {**_build_versions(), "mkl_cbwr": mkl_cbwr()}
        out["gpu"] = _gpu()
    out["id"] = math_id(out)
    return out


def math_id(desc: dict) -> str:
    """'<mode>:<8 hex>'. Portable mode leaves the CPU out (it is meant not to matter); native keeps it."""
    keep = {"mode": desc["mode"], "torch": desc.get("torch"), "libraries": desc.get("libraries"),
            "gpu": desc.get("gpu")}
    if desc["mode"] == "native":
        keep["cpu"] = {k: desc["cpu"][k] for k in ("model", "vendor", "arch", "isa")}
        keep["env"] = desc["env"]
    elif keep["libraries"]:
        keep["libraries"] = {**keep["libraries"], "mkl_cbwr": {**(keep["libraries"]["mkl_cbwr"] or {}),
                                                              "auto_branch": None}}  # CPU-dependent, unused
    digest = hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{desc['mode']}:{digest}"


def mode_of(math: str | None) -> str:
    """The mode of a recorded math id (records from before math was recorded ran native)."""
    return (math or "native").split(":", 1)[0]


def summary_line(desc: dict | None) -> str:
    """One line a person reads: mode, CPU, kernels, MKL branch, threads."""
    if not desc:
        return "unknown (recorded before float math was)"
    cpu, t = desc.get("cpu") or {}, desc.get("torch") or {}
    cbwr = ((desc.get("libraries") or {}).get("mkl_cbwr") or {}).get("branch")
    return (f"{desc.get('mode')} on {cpu.get('model') or '?'} ({', '.join(cpu.get('isa') or []) or 'no listed ISA'}); "
            f"torch {t.get('version', '?')} {t.get('cpu_capability', '?')} kernels, MKL branch {cbwr or '?'}, "
            f"{t.get('threads', '?')} thread(s)")
