"""`pytest suites/` options as a user gives them, each in its own pytest process.

- `--weights` on a checkpoint without goldens: the golden tests skip, each naming why, and the
  reference-free checks run on those weights; nothing fails.
- Markers compose: full, nightly and reference are opt-in (conftest.py), so `-m bench` is the
  tiny benchmarks only and `-m "bench and full"` the full-size ones.

About 50 s of subprocesses, hence nightly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.nightly
ROOT = Path(__file__).resolve().parents[2]


def pytest_run(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_weights_without_goldens_skip_golden_tests_and_run_reference_free(tmp_path):
    from harness.weights.synth import write_checkpoint

    other = write_checkpoint("tiny", 1, tmp_path / "tiny-seed1")  # no golden records seed 1
    r = pytest_run("suites/", "--weights", str(other), "-q", "-rs",
                   "-k", "test_golden_parity or test_weights_under_test")
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-2000:]
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    golden = [s for s in skips if "test_golden_parity.py" in s]
    assert len(golden) >= 5, out[-3000:]  # every committed tiny case
    assert all("no golden for --weights" in s and "recorded for other weights" in s
               and str(other) in s for s in golden), golden
    assert "Traceback" not in out and "OtherWeights" not in out, out[-3000:]
    assert re.search(r"\b(\d+) passed", out) and int(re.search(r"(\d+) passed", out)[1]) >= 3
    ran = pytest_run("suites/model/test_weights_under_test.py", "--weights", str(other), "-q")
    assert ran.returncode == 0 and "3 passed" in ran.stdout, ran.stdout[-2000:]


def _collected(*args) -> list[str]:
    r = pytest_run("--collect-only", "-q", *args, "harness/bench/suite.py")
    assert r.returncode in (0, 5), r.stdout[-2000:] + r.stderr[-2000:]  # 5: none selected
    return [line for line in r.stdout.splitlines() if "::" in line]


def test_markers_compose():
    tiny, full = _collected("-m", "bench"), _collected("-m", "bench and full")
    assert tiny and all("[tiny-" in t for t in tiny), tiny
    assert full and all("[full-" in t for t in full), full
    assert _collected() == tiny  # the default run has no full-size benchmark either
    assert not _collected("-m", "bench and nightly")
