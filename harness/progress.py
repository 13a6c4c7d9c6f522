"""Per-stage progress lines of long work, on stderr (stdout stays the result: text or --json).

`progress("loading weights")` prints `[sao-harness 12.3s] loading weights`, the time since
the process started its first stage. Library code may call it; SAO_HARNESS_QUIET (harness.
settings) silences it.
"""

from __future__ import annotations

import sys
import time

from harness.errors import one_line
from harness import settings

PREFIX = "[sao-harness "  # what tells a progress line from the one error line
_T0: list[float] = []


def without_progress(stderr: str) -> list[str]:
    """The non-empty lines of `stderr` that are not progress lines."""
    return [l for l in stderr.splitlines() if l.strip() and not l.startswith(PREFIX)]


def progress(message: str) -> None:
    if settings.quiet():
        return
    now = time.perf_counter()
    if not _T0:
        _T0.append(now)
    print(f"{PREFIX}{now - _T0[0]:6.1f}s] {one_line(message)}", file=sys.stderr, flush=True)
