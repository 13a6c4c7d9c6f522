"""The gate fails closed: an exception anywhere, a timeout, an unreadable golden or a missing
file is a reject (exit 1) or bad input (exit 2), never an accept."""

from __future__ import annotations

import json
import shutil

import pytest

from harness.cli import main
from harness.gate import report as gate_report
from harness.gate import runner
from harness.gate.stages import STAGES, Gate
from suites.cli_util import Result, assert_no_verdict, assert_one_line_error, run_cli
from suites.gate import gate_variants as gv


@pytest.fixture(scope="module")
def candidate(approved, tmp_path_factory):
    """An acceptable candidate (bit-identical tensors, other key order): only an injected
    fault can make it fail."""
    return gv.reversed_keys(approved, tmp_path_factory.mktemp("cand") / "rev")


def gate_json(capsys, *args) -> tuple[int, dict]:
    code = main(["gate", *map(str, args), "--frames", "64", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_uninjected_candidate_is_accepted(candidate, approved, capsys, golden_dir):
    code, out = gate_json(capsys, candidate, "--baseline", approved, "--golden-dir", golden_dir)
    assert (code, out["verdict"]) == (0, "accept"), out["reasons"]


def _boom(*args, **kwargs):
    raise RuntimeError("injected fault")


@pytest.mark.parametrize("where", [*STAGES, "prepare", "bookkeeping", "report", "worker"])
def test_injected_exception_is_no_verdict(where, candidate, approved, capsys, monkeypatch,
                                          tmp_path, golden_dir):
    """An internal error anywhere: exit 3 and verdict "error", never accept and never a reject
    that CI could read as a verdict on the weights."""
    if where in STAGES or where == "prepare":
        monkeypatch.setattr(Gate, where, _boom)
    elif where == "bookkeeping":
        monkeypatch.setattr(runner._Run, "stage", _boom)
    elif where == "report":
        monkeypatch.setattr(gate_report, "write_report", _boom)
    else:  # the worker thread's own setup
        monkeypatch.setattr(runner._Run, "_run", _boom)
    code, out = gate_json(capsys, candidate, "--baseline", approved, "--golden-dir", golden_dir,
                          "--report", tmp_path / "report")
    assert code == 3
    assert out["verdict"] == "error" and out["passed"] is False
    assert "internal error: RuntimeError: injected fault" in out["error"], out
    assert any("internal error: RuntimeError: injected fault" in r for r in out["reasons"]), out
    files = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"result.json", "junit.xml", "report.md"} <= files
    assert json.loads((tmp_path / "report" / "result.json").read_text())["verdict"] == "error"
    assert "# Weight gate: ERROR" in (tmp_path / "report" / "report.md").read_text()
    if where == "audio":  # not part of the verdict under --expect same, still fails closed
        assert not next(s for s in out["stages"] if s["name"] == "audio")["required"]


def test_timeout_is_no_verdict(candidate, approved, golden_dir):
    res = run_cli("gate", candidate, "--baseline", approved, "--golden-dir", golden_dir,
                  "--timeout", "0.05", "--json")
    assert res.code == 3, res.err
    out = json.loads(res.out)
    assert out["verdict"] == "error" and not out["passed"]
    assert any("did not finish within --timeout 0.05 s" in r for r in out["reasons"])


def _golden_copy(golden_dir, root, case="tiny-torch"):
    shutil.copytree(golden_dir / case, root / case)
    return root / case


def test_unreadable_golden_rejects(approved, tmp_path, gate, golden_dir):
    """A golden for this very checkpoint whose tensors were edited: reject, naming it."""
    case = _golden_copy(golden_dir, tmp_path / "goldens")
    data = bytearray((case / "tensors.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (case / "tensors.safetensors").write_bytes(bytes(data))
    cand = gv.copy(approved, tmp_path / "copy").parent  # same sha256 as the goldens
    r = gate(cand, approved, "same", golden_dir=tmp_path / "goldens")
    assert r.verdict == "reject"
    assert any("sha256 mismatch" in x and "tensors.safetensors" in x for x in r.reasons), r.reasons


def test_unparsable_golden_manifest_rejects(approved, tmp_path, gate, golden_dir, candidate):
    """A manifest that does not parse may belong to any checkpoint: reject."""
    case = _golden_copy(golden_dir, tmp_path / "goldens")
    (case / "manifest.json").write_text("{ not json")
    r = gate(candidate, approved, "same", golden_dir=tmp_path / "goldens")
    assert r.verdict == "reject"
    assert any("manifest.json" in x and "JSON" in x for x in r.reasons), r.reasons


BAD_INPUT = {
    "missing-candidate": (["{missing}", "--baseline", "{approved}"],
                          ["{missing}", "no such file or directory", "candidate"]),
    "same-without-baseline": (["{cand}", "--expect", "same"], ["--expect same needs --baseline"]),
    "broken-baseline": (["{cand}", "--baseline", "{broken}"], ["{broken}", "truncated"]),
    "missing-golden-dir": (["{cand}", "--baseline", "{approved}", "--golden-dir", "{missing}"],
                           ["{missing}", "golden directory does not exist"]),
    "report-not-writable": (["{cand}", "--baseline", "{approved}", "--report", "{file}/sub"],
                            ["cannot write the report"]),
    "bad-audio-thresholds": (["{cand}", "--baseline", "{approved}", "--audio-thresholds",
                              "{file}"], ["{file}", "no threshold for"]),
}


def _bad_input_argv(name, candidate, approved, tmp_path):
    args, needles = BAD_INPUT[name]
    (tmp_path / "file").write_text("")
    paths = dict(missing=tmp_path / "nope", approved=approved, cand=candidate,
                 broken=gv.truncated(approved, tmp_path / "broken") / "model.safetensors",
                 file=tmp_path / "file")
    return [a.format(**paths) for a in args], [n.format(**paths) for n in needles]


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_gate_input_exits_2(name, candidate, approved, tmp_path, capsys):
    """The gate's own inputs (not the candidate's content): one line naming it, exit 2."""
    argv, needles = _bad_input_argv(name, candidate, approved, tmp_path)
    code = main(["gate", *argv, "--json"])
    cap = capsys.readouterr()
    assert_no_verdict(cap.out)  # no verdict is printed for input the gate cannot judge
    assert_one_line_error(Result(code, cap.out, cap.err), *needles)


def test_bad_gate_input_in_a_real_process(candidate, approved, tmp_path):
    argv, needles = _bad_input_argv("broken-baseline", candidate, approved, tmp_path)
    assert_one_line_error(run_cli("gate", *argv), *needles)


def test_missing_goldens_reject_update(seed1, gate, tmp_path, golden_dir):
    r = gate(seed1, None, "update")
    assert r.verdict == "reject"
    assert any(x.startswith("parity: no goldens recorded by the reference for sha256")
               for x in r.reasons), r.reasons


def test_no_parity_is_written_into_the_report(seed1, tmp_path, golden_dir, capsys):
    code, out = gate_json(capsys, seed1, "--expect", "update", "--no-parity", "--report",
                          tmp_path / "r", "--golden-dir", golden_dir)
    assert out["verdict"] == "reject" and code == 1  # 64 frames: too short for audio checks
    assert not any(r.startswith("parity:") for r in out["reasons"])
    assert any("--no-parity" in n for n in out["notes"])
    md = (tmp_path / "r" / "report.md").read_text()
    assert "waived (--no-parity)" in md and "waived by --no-parity" in md
