"""The two failures every command tells apart: bad input (exit 2) and a failed check (exit 1)."""

from __future__ import annotations

from pathlib import Path


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
