"""The official reference (stable-audio-tools 0.0.19 in PyTorch, and its LiteRT export) run on
injected inputs to record goldens. Needs the reference venv (install_env.sh); nothing here is
imported by the MLX runtime.

Bit-reproducible recordings need torch's own MKL, pinned:
- MKL's conditional numerical reproducibility is set before torch can load MKL: without it
  sgemm depends on buffer alignment and a recording differs between processes in the last
  bits (measured: 75 of 88 tiny tensors, up to 3.6e-7 abs).
- OpenBLAS preloaded for MLX (LD_PRELOAD, as harness.blas and .ci/run do) replaces torch's
  sgemm too (79 of 88 tensors differ): recordings run in a process without it.
"""

import os
from pathlib import Path

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


def foreign_blas_loaded() -> bool:
    """Is OpenBLAS mapped into this process (it would stand in for torch's MKL sgemm)?"""
    try:
        return "libopenblas" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def clean_env(env: dict[str, str]) -> dict[str, str]:
    """`env` without the OpenBLAS preload and its kernel override."""
    env = dict(env)
    kept = [p for p in env.pop("LD_PRELOAD", "").split(":") if p and "openblas" not in p]
    if kept:
        env["LD_PRELOAD"] = ":".join(kept)
    env.pop("OPENBLAS_CORETYPE", None)
    return env
