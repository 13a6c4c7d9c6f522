"""What every report and JSON states about the run: harness version, source commit, the MLX
device and the host, so a number is never read without the machine that produced it."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def commit() -> str:
    """The source tree's git commit (+ "-dirty" with uncommitted changes), else $GITHUB_SHA,
    else "unknown" (an installed wheel has no git metadata)."""
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(REPO), *a], capture_output=True,
                                        text=True, timeout=10)
        head = run("rev-parse", "HEAD")
        if head.returncode == 0:
            dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
            return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GITHUB_SHA") or "unknown"


def provenance(device: str | None = None) -> dict:
    from harness import __version__
    from harness.host import cpu_model

    if device is None:
        from harness.device import current
        device = current()
    try:
        import mlx.core as mx
        mlx_version = mx.__version__
    except ImportError:
        mlx_version = None
    return {"harness_version": __version__, "commit": commit(), "device": device,
            "mlx": mlx_version,
            "host": {"cpu": cpu_model(), "platform": platform.platform(),
                     "machine": platform.machine(), "cpu_count": os.cpu_count()}}


def one_line(p: dict) -> str:
    """`sao-harness 0.1.0 @ 1a2b3c4d5e6f, device cpu, host Intel(R) Xeon(R) ... (Linux-..., 2 cores)`"""
    c = p["commit"]
    short = c[:12] + ("-dirty" if c.endswith("-dirty") else "") if c != "unknown" else c
    h = p["host"]
    return (f"sao-harness {p['harness_version']} @ {short}, device {p['device']} (mlx {p['mlx']}), "
            f"host {h['cpu']} ({h['platform']}, {h['cpu_count']} cores)")
