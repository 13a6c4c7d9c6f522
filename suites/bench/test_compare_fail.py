"""The regression gate works: --benchmark-compare-fail fails a deliberately slowed model and
passes the unchanged one against its own baseline.

Three pytest-benchmark runs in subprocesses, with the gate's timer and threads
(`harness.bench.baseline`: CPU time, single-threaded BLAS), on the tiny DiT-forward
benchmark, into a temporary storage: save a baseline; compare the unchanged model (must
pass); compare with a plugin that makes every DiT call 30% slower (must fail). The threshold
is the one CI uses for this benchmark on this machine class
(golden/benchmarks/<class>/threshold.json); where that N is 30% or more the injected slowdown
is raised to 2N + 100% (the failure message names the slowdown).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.bench.baseline import GATE_ARGS, ROOT as BASELINES, gate_env, thresholds
from harness.bench.machine import machine_class

REPO = Path(__file__).resolve().parents[2]
DIT = "harness/bench/suite.py::test_stage[tiny-dit]"
FALLBACK_PERCENT = 50  # a machine class without threshold.json: a loose gate

SLOW_PLUGIN = '''
"""Slows the model at run time: each DiT call spends SAO_TEST_DIT_SLOWDOWN times its own
CPU time again in extra work (as a slower kernel would)."""
import os
import time

import mlx.core as mx

from harness.model.dit import DiffusionTransformer

SLOWDOWN = float(os.environ["SAO_TEST_DIT_SLOWDOWN"])
_call = DiffusionTransformer.__call__


def _slowed(self, *args, **kwargs):
    t0 = time.process_time()
    out = _call(self, *args, **kwargs)
    mx.eval(out)
    end = time.process_time() + SLOWDOWN * (time.process_time() - t0)
    while time.process_time() < end:
        pass
    return out


DiffusionTransformer.__call__ = _slowed
'''


def run_bench(tmp_path: Path, tag: str, *args: str, env: dict | None = None):
    cmd = [sys.executable, "-m", "pytest", DIT, *GATE_ARGS, "-q",
           f"--basetemp={tmp_path / ('bt-' + tag)}",
           f"--benchmark-storage=file://{tmp_path / 'storage'}", *args]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                       env={**gate_env(), **(env or {})})
    return p.returncode, p.stdout + p.stderr


@pytest.mark.nightly  # three benchmark runs, 12 s: .ci/run's full stage runs it
def test_compare_fail_catches_slowed_model(tmp_path):
    cls_dir = BASELINES / machine_class()
    percent = (thresholds(cls_dir).get(DIT, FALLBACK_PERCENT)
               if (cls_dir / "threshold.json").is_file() else FALLBACK_PERCENT)
    gate = f"--benchmark-compare-fail=min:{percent}%"

    code, out = run_bench(tmp_path, "base", "--benchmark-save=base")
    assert code == 0, out[-4000:]
    assert len(list((tmp_path / "storage").rglob("0001_base.json"))) == 1, out[-2000:]

    code, out = run_bench(tmp_path, "same", "--benchmark-compare=0001", gate)
    assert code == 0, "unchanged model failed against its own baseline:\n" + out[-4000:]
    assert "Performance has regressed" not in out

    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "sao_slow_dit.py").write_text(SLOW_PLUGIN)
    slowdown = 0.3 if percent < 30 else 2 * percent / 100 + 1  # N >= 30%: well above N
    code, out = run_bench(
        tmp_path, "slow", "--benchmark-compare=0001", gate, "-p", "sao_slow_dit",
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_dir),
                                                         os.environ.get("PYTHONPATH")])),
             "SAO_TEST_DIT_SLOWDOWN": str(slowdown)})
    assert code != 0, f"model {slowdown:.0%} slower passed the gate:\n" + out[-4000:]
    assert "Performance has regressed" in out, out[-4000:]
    assert "test_stage[tiny-dit]" in out[out.index("Performance has regressed"):], out[-3000:]
