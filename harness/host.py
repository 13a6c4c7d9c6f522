"""Facts about the host that goldens and benchmarks record beside their numbers."""

from __future__ import annotations

import os
import platform
import sys


def cpu_model() -> str:
    """The CPU's vendor and model name ("Intel(R) Xeon(R) Processor", "AMD EPYC 9R14"): float
    kernels (OpenBLAS, torch, MLX) pick code paths per CPU, so results differ in the last bits
    and timings by several times between hosts of one machine class."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity set; a container or `taskset` can
    give fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1
