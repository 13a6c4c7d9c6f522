"""Machine class: the key under which benchmark baselines are stored (golden/benchmarks/<class>/).

Timings are only comparable on like machines: OS, CPU architecture, core count and the CPU's
vendor and model name the class (`linux-x86_64-2core-intel-xeon-processor`,
`linux-x86_64-2core-amd-epyc-9r14`, `darwin-arm64-10core-apple-m1-pro`): hosts of one machine
kind ran 2-4x apart with different CPUs. `family` (the class without the CPU) finds a
baseline of a sibling CPU when this CPU has none. SAO_BENCH_MACHINE_CLASS overrides it.
"""

from __future__ import annotations

import os
import platform
import re
import sys

from harness import settings
from harness.host import cpu_model


def machine_family() -> str:
    """OS, architecture and core count: `linux-x86_64-2core`."""
    system = "darwin" if sys.platform == "darwin" else sys.platform.rstrip("0123456789")
    return f"{system}-{platform.machine().lower()}-{os.cpu_count() or 1}core"


def cpu_slug(model: str | None = None) -> str:
    """'Intel(R) Xeon(R) Processor' -> 'intel-xeon-processor'."""
    text = re.sub(r"\((r|tm)\)", "", (model or cpu_model()).lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown-cpu"


def machine_class() -> str:
    override = settings.machine_class_override()
    if override:
        return override
    return f"{machine_family()}-{cpu_slug()}"


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


if __name__ == "__main__":
    print(machine_class())
