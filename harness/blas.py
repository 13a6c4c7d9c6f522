"""Detect MLX's slow bundled reference BLAS on Linux and tell how to preload a real one.

`mlx[cpu]` wheels link a reference BLAS; preloading Debian's OpenBLAS
(`libopenblas0-pthread`) replaces its symbols process-wide (see README for measurements).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OPENBLAS_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
)


def openblas_path() -> str | None:
    return next((p for p in OPENBLAS_CANDIDATES if Path(p).exists()), None)


def openblas_loaded() -> bool:
    try:
        return "libopenblas" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def blas_advice() -> str | None:
    """None when fine (not Linux, or a real BLAS is loaded); else one line of advice."""
    if not sys.platform.startswith("linux") or openblas_loaded():
        return None
    lib = openblas_path()
    if lib:
        return (f"MLX is using its slow bundled reference BLAS; for ~5-30x faster fp32 matmul run "
                f"with LD_PRELOAD={lib}")
    return ("MLX is using its slow bundled reference BLAS; install libopenblas0-pthread "
            "(apt-get install libopenblas0-pthread) and set LD_PRELOAD to its libopenblas.so.0")


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def coretype() -> str | None:
    """Kernel family for Debian's OpenBLAS 0.3.21, which does not recognize newer Xeons and
    falls back to its SSE3 'Prescott' kernels (measured ~3.5x slower sgemm on this CI's CPU).
    A value already set in the environment is never changed."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return None
    flags = cpu_flags()
    if "avx512f" in flags:
        return "SkylakeX"
    return "Haswell" if "avx2" in flags else None


def openblas_env() -> dict[str, str]:
    """Environment additions that make MLX use OpenBLAS ({} when not applicable)."""
    lib = openblas_path()
    if not sys.platform.startswith("linux") or lib is None:
        return {}
    env = {"LD_PRELOAD": ":".join(filter(None, [lib, os.environ.get("LD_PRELOAD")]))}
    if coretype():
        env["OPENBLAS_CORETYPE"] = coretype()
    return env


def reexec_with_openblas() -> None:
    """Restart this process with OpenBLAS preloaded, once, when it is installed but not loaded."""
    extra = openblas_env()
    if not extra or openblas_loaded() or os.environ.get("SAO_HARNESS_NO_PRELOAD"):
        return
    env = dict(os.environ, SAO_HARNESS_NO_PRELOAD="1", **extra)
    os.execve(sys.executable, [sys.executable, "-m", "harness.cli", *sys.argv[1:]], env)


if __name__ == "__main__":  # `eval "$(python -m harness.blas)"` sets up a shell
    for key, value in openblas_env().items():
        print(f"export {key}={value}")
