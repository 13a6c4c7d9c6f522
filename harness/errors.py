"""The failures every command tells apart, and the one-line rule for printing them.

Exit codes: 0 pass, 1 a check ran on good input and said no, 2 bad input or usage (including
a resource limit such as memory: a cause, never a verdict), 3 an internal error of the
harness (`--debug` shows its traceback).
"""

from __future__ import annotations

import re
from pathlib import Path

# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators: anything a terminal
# or a CI log could take as a new line or an escape sequence.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(text: object) -> str:
    """`text` with every control character escaped (\\n, \\r, \\x1b, ...): file-derived text
    (tensor names, JSON values, paths) can never start a line of its own in a log."""

    def esc(m: re.Match) -> str:
        c = m.group()
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c) or (
            f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _CONTROL.sub(esc, str(text))


class BadInput(Exception):
    """Input the harness cannot use: a malformed file, wrong shape, missing key, bad option.

    The message is one line naming the file (and tensor) and the fault; the CLI prints it
    and exits 2.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class CheckFailed(Exception):
    """A check ran on good input and said no (exit 1)."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so `finally` blocks clean up (exit 143)."""
