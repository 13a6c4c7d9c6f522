"""The process environment MLX needs on Linux CPU: a real BLAS and a heap that is reused.

- `mlx[cpu]` wheels link a reference BLAS; preloading Debian's OpenBLAS
  (`libopenblas0-pthread`) replaces its symbols process-wide (see README for measurements).
- glibc serves every allocation over 32 MB with a fresh mmap and unmaps it on free, so each
  large MLX buffer (the VAE's 128-channel activations are 268 MB at 256 frames) is paid again
  in page faults and kernel zeroing: a 268 MB add took 179 ms, a 128x128 GEMM over it 302 ms.
  With mmap off and no trimming, freed memory stays in the heap for the next buffer: 49 and
  124 ms, and the full VAE decode of 256 frames 28.4 s -> 19.5 s. The price is memory: the
  heap is not returned to the OS and fragments, so a full 11 s `generate` peaks at 8.5 GB RSS
  instead of 5.1 GB (for 27.5 s instead of 42.5 s). Setting MALLOC_MMAP_MAX_ yourself (e.g.
  to glibc's default 65536) opts out: a value the user set is never changed.
Both need to be in place before the process starts: `sao-harness` re-executes itself with
them, `eval "$(python -m harness.blas)"` sets them in a shell.

At run time, `threads(n)` sets the loaded OpenBLAS's thread count for a block (work that runs
one GEMM per CPU stream at once wants one BLAS thread each).
"""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager
from functools import cache
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


@cache  # the tiled decode asks once per tile group; the loaded libraries never change
def _openblas_thread_calls():
    """(get, set) of the process's OpenBLAS thread count, or None when no OpenBLAS is loaded
    (macOS's Accelerate, MLX's bundled reference BLAS)."""
    try:
        lib = ctypes.CDLL(None)
        return lib.openblas_get_num_threads, lib.openblas_set_num_threads
    except (OSError, AttributeError):
        return None


def thread_count() -> int | None:
    """The loaded OpenBLAS's thread count (None without OpenBLAS)."""
    calls = _openblas_thread_calls()
    return None if calls is None else calls[0]()


@contextmanager
def threads(n: int):
    """OpenBLAS at n threads inside the block, its previous count restored after; a no-op
    without OpenBLAS. OpenBLAS's pthread build runs one multi-threaded GEMM at a time (a
    process-wide lock) and its idle threads spin: GEMMs issued from two CPU streams at once
    run side by side only with one thread each."""
    calls = _openblas_thread_calls()
    if calls is None:
        yield
        return
    get, set_ = calls
    before = get()
    set_(max(1, n))
    try:
        yield
    finally:
        set_(before)


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


# glibc's malloc tunables (legacy environment names, read at process start).
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


def malloc_env() -> dict[str, str]:
    """The heap settings, for glibc Linux only; a value the user set is kept."""
    if not sys.platform.startswith("linux"):
        return {}
    return {k: v for k, v in MALLOC_ENV.items() if k not in os.environ}


def runtime_env() -> dict[str, str]:
    """Every environment addition for MLX on this machine ({} off Linux)."""
    return {**malloc_env(), **openblas_env()}


def openblas_env() -> dict[str, str]:
    """Environment additions that make MLX use OpenBLAS ({} when not applicable)."""
    lib = openblas_path()
    if not sys.platform.startswith("linux") or lib is None:
        return {}
    preload = os.environ.get("LD_PRELOAD", "")
    env = {} if lib in preload else {"LD_PRELOAD": ":".join(filter(None, [lib, preload]))}
    if coretype():
        env["OPENBLAS_CORETYPE"] = coretype()
    return env


def reexec_with_runtime_env() -> None:
    """Restart this process, once, with `runtime_env` when something of it is missing."""
    extra = runtime_env()
    if not extra or os.environ.get("SAO_HARNESS_NO_PRELOAD"):
        return
    env = dict(os.environ, SAO_HARNESS_NO_PRELOAD="1", **extra)
    os.execve(sys.executable, [sys.executable, "-m", "harness.cli", *sys.argv[1:]], env)


if __name__ == "__main__":  # `eval "$(python -m harness.blas)"` sets up a shell
    for key, value in runtime_env().items():
        print(f"export {key}={value}")
