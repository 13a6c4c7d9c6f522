"""Time a stage: warm-up calls, then one perf_counter interval per call; min and median.

Used by `sao-harness bench` for MLX and (through `timing_row`, numpy only) by the peers, so
all implementations in one table are timed the same way. pytest-benchmark does its own
timing in `suites/bench`; both call the same stage callables.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass
class Row:
    stage: str
    impl: str
    config: str
    min_s: float | None = None
    median_s: float | None = None
    rounds: int = 0
    frames: int | None = None
    peak_mb: float | None = None   # framework-reported peak (MLX allocator), when it has one
    note: str | None = None        # why there is no time (peer missing, stage skipped, error)
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def time_calls(fn: Callable[[], object], rounds: int, warmup: int) -> tuple[list[float], object]:
    """-> (seconds of each timed call, the last call's result)."""
    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def timing_row(stage: str, impl: str, config: str, fn: Callable[[], object], rounds: int,
               warmup: int, frames: int | None = None) -> tuple[Row, object]:
    """-> (the row, the stage's output from the last timed call)."""
    times, result = time_calls(fn, max(rounds, 1), warmup)
    row = Row(stage, impl, config, min(times), statistics.median(times), len(times), frames)
    return row, result


def max_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024
