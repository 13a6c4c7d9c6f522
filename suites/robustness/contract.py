"""The contract every hostile input is held to, and the ways to run the CLI.

Bad input: exit 2, exactly one stderr line naming the file and the fault (besides the
`[sao-harness ...]` progress lines of work begun), no traceback, no stdout verdict. A malformed candidate given to the gate: never an accept. Every run ends within
its timeout; a real process's peak RSS is measured by a one-child wrapper process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.progress import without_progress

TIMEOUT = 120      # seconds: no case may take longer (issue 16)
MAX_RSS_MB = 2048  # no command above 2 GB on malformed input of any size


@dataclass
class Result:
    code: int
    out: str
    err: str
    rss_mb: float | None = None


def cli(*args) -> Result:
    """`sao-harness ARGS` in this process (the bulk of the cases: no interpreter start-up)."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())


# Runs the command as the wrapper's only child and reports that child's peak RSS.
_WRAPPER = """
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)
"""


def run(*args, timeout: float = TIMEOUT, env: dict | None = None,
        stdin=subprocess.DEVNULL) -> Result:
    """`python -m harness.cli ARGS` as a real process, with its peak RSS (MB)."""
    p = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-m", "harness.cli",
                        *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env=env, stdin=stdin)
    err_lines = p.stderr.rstrip("\n").split("\n")
    rss_kb = float(err_lines[-1])
    return Result(p.returncode, p.stdout, "\n".join(err_lines[:-1]) + "\n" if len(err_lines) > 1
                  else "", rss_kb / 1024)


def error_line(res: Result, code: int = 2, *needles) -> str:
    """Exit `code`, exactly one stderr line, no traceback, naming every needle."""
    assert res.code == code, f"exit {res.code} (want {code}); stderr: {res.err!r}; out: {res.out[:300]!r}"
    assert "Traceback" not in res.err, res.err
    lines = without_progress(res.err)
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    for n in needles:
        assert str(n) in lines[0], f"{str(n)!r} not in {lines[0]!r}"
    if res.rss_mb is not None:
        assert res.rss_mb < MAX_RSS_MB, f"peak RSS {res.rss_mb:.0f} MB"
    return lines[0]


def bad_input(res: Result, *needles) -> str:
    line = error_line(res, 2, *needles)
    assert line.startswith("sao-harness: error: "), line
    return line


def rejected(res: Result, *needles) -> dict:
    """The gate's answer on a malformed candidate: reject (exit 1) or bad input (exit 2),
    never accept; with --json the verdict names the fault."""
    assert res.code in (1, 2), f"gate exit {res.code}: {res.out[:500]} {res.err}"
    assert "Traceback" not in res.err
    if res.code == 2:
        bad_input(res, *needles)
        return {}
    out = json.loads(res.out)
    assert out["verdict"] == "reject", out
    text = json.dumps(out["reasons"])
    for n in needles:
        assert str(n) in text, f"{n!r} not in the reasons {text[:600]}"
    return out


def no_temp_left(directory: Path) -> list[str]:
    """Hidden temporary files or directories left beside an output."""
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith("."))


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in dst.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    return dst
