"""A baseline the gate cannot time is an internal error, never a verdict: pytest-benchmark
skips a stored benchmark whose name it does not find, which would otherwise read as a pass."""

from __future__ import annotations

import json

import pytest

from harness.bench import baseline
from harness.bench.machine import machine_class


def test_baseline_entry_that_is_not_timed_is_no_verdict(tmp_path, monkeypatch):
    cls = machine_class()
    src = baseline.ROOT / cls / "tiny.json"
    if not src.is_file():
        pytest.skip(f"missing: a stored tiny baseline for machine class {cls}")
    d = tmp_path / cls
    d.mkdir()
    data = json.loads(src.read_text())
    bench = data["benchmarks"][0]
    bench["fullname"] = bench["fullname"].replace("test_stage[", "test_stage_renamed[")
    data["benchmarks"] = [bench]
    (d / "tiny.json").write_text(json.dumps(data))
    monkeypatch.setattr(baseline, "ROOT", tmp_path)  # fail_percent: no threshold.json read
    with pytest.raises(RuntimeError, match="pytest exited 4"):
        baseline.compare("tiny", fail_percent=1000)
