"""The regression gate works: --benchmark-compare-fail fails a deliberately slowed model and
passes the unchanged one against its own baseline.

Three pytest-benchmark runs in subprocesses on two tiny benchmarks (DiT forward and the short
VAE decode), into a temporary storage: save a baseline; compare the unchanged model (must
pass); compare with the DiT slowed by a plugin that sleeps after every DiT call (must fail,
naming the DiT benchmark and only it). The threshold is the one CI uses on this machine class
(golden/benchmarks/<class>/threshold.json); the injected delay is sized from the baseline so
the slowdown is twice that threshold whatever this machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.bench.baseline import ROOT as BASELINES, threshold
from harness.bench.machine import machine_class

REPO = Path(__file__).resolve().parents[2]
DIT = "suites/bench/test_bench_stages.py::test_stage[tiny-dit]"
VAE = "suites/bench/test_bench_stages.py::test_stage[tiny-vae_decode_short]"
FALLBACK_PERCENT = 100  # no threshold.json for this machine class: a loose gate, still 2x apart

SLOW_PLUGIN = '''
"""Slows the model at run time: every DiT call waits SAO_TEST_DIT_DELAY seconds after its output."""
import os
import time

import mlx.core as mx

from harness.model.dit import DiffusionTransformer

DELAY = float(os.environ["SAO_TEST_DIT_DELAY"])
_call = DiffusionTransformer.__call__


def _slowed(self, *args, **kwargs):
    out = _call(self, *args, **kwargs)
    mx.eval(out)
    time.sleep(DELAY)
    return out


DiffusionTransformer.__call__ = _slowed
'''


def run_bench(tmp_path: Path, tag: str, *args: str, env: dict | None = None):
    cmd = [sys.executable, "-m", "pytest", DIT, VAE, "--benchmark-enable", "-p", "no:cacheprovider",
           "-q", f"--basetemp={tmp_path / ('bt-' + tag)}",
           f"--benchmark-storage=file://{tmp_path / 'storage'}", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_compare_fail_catches_slowed_model(tmp_path):
    cls_dir = BASELINES / machine_class()
    percent = threshold(cls_dir) if (cls_dir / "threshold.json").is_file() else FALLBACK_PERCENT
    gate = f"--benchmark-compare-fail=min:{percent}%"

    base = run_bench(tmp_path, "base", "--benchmark-save=base")
    assert base.returncode == 0, base.stdout[-3000:] + base.stderr[-3000:]
    saved = list((tmp_path / "storage").rglob("0001_base.json"))
    assert len(saved) == 1, f"baseline not saved: {list((tmp_path / 'storage').rglob('*'))}"
    mins = {b["name"]: b["stats"]["min"] for b in json.loads(saved[0].read_text())["benchmarks"]}
    dit_min = mins["test_stage[tiny-dit]"]

    same = run_bench(tmp_path, "same", "--benchmark-compare=0001", gate)
    assert same.returncode == 0, ("unchanged model failed against its own baseline:\n"
                                  + same.stdout[-3000:] + same.stderr[-3000:])

    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "sao_slow_dit.py").write_text(SLOW_PLUGIN)
    delay = dit_min * (2 * percent / 100 + 1)  # slowed min >= (2 + 2N/100) x baseline min
    slow = run_bench(tmp_path, "slow", "--benchmark-compare=0001", gate, "-p", "sao_slow_dit",
                     env={"PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_dir),
                                                                      os.environ.get("PYTHONPATH")])),
                          "SAO_TEST_DIT_DELAY": f"{delay:.6f}"})
    out = slow.stdout + slow.stderr
    assert slow.returncode != 0, "slowed model passed the gate:\n" + out[-3000:]
    assert "Performance has regressed" in out, out[-3000:]
    regressed = out[out.index("Performance has regressed"):]
    assert "tiny-dit" in regressed and "vae_decode_short" not in regressed, regressed[:2000]
