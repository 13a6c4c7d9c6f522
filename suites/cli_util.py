"""Run the `sao-harness` console entry point in a subprocess, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from harness.progress import without_progress


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str, timeout: float = 600) -> Result:
    p = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr)


def assert_one_line_error(res: Result, *needles: str) -> str:
    """Exit 2, one stderr line, no traceback, naming every needle (file, tensor, fault)."""
    assert res.code == 2, f"exit {res.code}, stderr: {res.err!r}"
    lines = without_progress(res.err)  # progress lines of work begun aside
    assert len(lines) == 1, f"expected one error line, got: {res.err!r}"
    assert "Traceback" not in res.err
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def assert_no_verdict(out: str) -> None:
    """Input the command cannot judge prints no verdict: stdout is empty, or under --json the
    error object only (harness/cli/output.py)."""
    if out:
        doc = json.loads(out)
        assert doc["passed"] is False and doc["exit_code"] == 2 and doc["error"], doc
        assert "verdict" not in doc and "stages" not in doc, doc
