"""Machine class: the key under which benchmark baselines are stored (golden/benchmarks/<class>/).

Timings are only comparable on like machines: OS, CPU architecture and core count name the
class (`linux-x86_64-2core`, `darwin-arm64-10core`). SAO_BENCH_MACHINE_CLASS overrides it,
e.g. to keep two runner types with equal core counts apart.
"""

from __future__ import annotations

import os
import platform
import sys

from harness import settings


def machine_class() -> str:
    override = settings.machine_class_override()
    if override:
        return override
    system = "darwin" if sys.platform == "darwin" else sys.platform.rstrip("0123456789")
    return f"{system}-{platform.machine().lower()}-{os.cpu_count() or 1}core"


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


if __name__ == "__main__":
    print(machine_class())
