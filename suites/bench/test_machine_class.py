"""Machine classes name the CPU; a host whose CPU has no baseline falls back, explicitly, to a
sibling CPU's baseline with wider thresholds."""

from __future__ import annotations

import json

from harness.bench import baseline, machine


def test_class_names_vendor_and_model(monkeypatch):
    assert machine.cpu_slug("Intel(R) Xeon(R) Processor") == "intel-xeon-processor"
    assert machine.cpu_slug("AMD EPYC 9R14 96-Core Processor") == "amd-epyc-9r14-96-core-processor"
    monkeypatch.delenv("SAO_BENCH_MACHINE_CLASS", raising=False)
    monkeypatch.setattr(machine, "cpu_model", lambda: "AMD EPYC 9R14")
    assert machine.machine_class() == f"{machine.machine_family()}-amd-epyc-9r14"


def test_other_cpu_falls_back_to_a_sibling_with_a_note(tmp_path, monkeypatch):
    monkeypatch.delenv("SAO_BENCH_MACHINE_CLASS", raising=False)
    monkeypatch.setattr(baseline, "ROOT", tmp_path)
    monkeypatch.setattr(machine, "cpu_model", lambda: "AMD EPYC 9R14")
    sibling = tmp_path / f"{machine.machine_family()}-intel-xeon-processor"
    sibling.mkdir()
    (sibling / "tiny.json").write_text(json.dumps({"benchmarks": []}))
    (tmp_path / "other-family-1core-intel-xeon-processor").mkdir()

    d, note = baseline.baseline_dir(None, "tiny")
    assert d == sibling
    assert "another CPU model" in note and f"+{baseline.CROSS_CPU_PERCENT}%" in note
    assert "amd-epyc-9r14" in note

    own = tmp_path / machine.machine_class()
    own.mkdir()
    (own / "tiny.json").write_text(json.dumps({"benchmarks": []}))
    assert baseline.baseline_dir(None, "tiny") == (own, None)
