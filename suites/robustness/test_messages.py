"""One line means one line; exit codes say what happened: 1 only for a failed check, 2 for
bad input, 3 for an internal error (one line, `--debug` for the traceback)."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suites.cli_util import assert_no_verdict
from suites.robustness.contract import bad_input, cli, error_line


INJECTIONS = {
    "newline": "x\nACCEPT: all weights verified",
    "carriage-return": "x\rACCEPT: all weights verified",
    "escape-sequence": "x\x1b[2K\x1b[1GACCEPT",
    "line-separator": "x\u2028ACCEPT",
    "nul": "x\x00ACCEPT",
}


def _with_extra_tensor(ckpt, name: str):
    """A valid safetensors file holding the checkpoint's tensors plus one named `name`."""
    path = ckpt / "model.safetensors"
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    header[name] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data + np.float32(1).tobytes())
    return path


@pytest.mark.parametrize("kind", list(INJECTIONS))
def test_tensor_names_cannot_inject_lines_into_inspect(kind, tiny_copy):
    ckpt = tiny_copy()
    _with_extra_tensor(ckpt, INJECTIONS[kind])
    line = bad_input(cli("inspect", ckpt), "unexpected tensor x")
    assert "\x1b" not in line and "\r" not in line and "\x00" not in line


@pytest.mark.parametrize("kind", list(INJECTIONS))
def test_tensor_names_cannot_inject_lines_into_the_gate(kind, tiny_copy, tmp_path):
    ckpt = tiny_copy()
    _with_extra_tensor(ckpt, INJECTIONS[kind])
    res = cli("gate", ckpt, "--expect", "update", "--no-parity", "--report", tmp_path / "r")
    assert res.code == 1
    lines = res.out.splitlines()
    assert lines[0].startswith("REJECT: ")
    assert not any(l.lstrip().startswith("ACCEPT") for l in lines[1:]), lines
    assert not any(c in res.out for c in "\r\x1b\x00\u2028")
    md = (tmp_path / "r" / "report.md").read_text()
    assert not any(l.startswith("ACCEPT") for l in md.splitlines())
    assert json.loads((tmp_path / "r" / "result.json").read_text())["verdict"] == "reject"


def test_a_path_with_a_newline_stays_on_one_line(tmp_path):
    d = tmp_path / "evil\nACCEPT: ok"
    d.mkdir()
    line = bad_input(cli("inspect", d))
    assert "evil\\nACCEPT" in line


@given(st.text(max_size=40))
@settings(max_examples=200, deadline=None)
def test_one_line_escapes_every_line_break(text):
    from harness.errors import one_line

    out = one_line(text)
    assert len(out.splitlines()) <= 1 and "\x1b" not in out and "\r" not in out
    if text.isprintable():
        assert out == text


# -- exit codes ------------------------------------------------------------------------
def _boom(args):
    raise RuntimeError("injected bug")


def test_internal_error_is_exit_3_one_line(monkeypatch, tiny_checkpoint):
    from harness.cli import inspect as commands

    monkeypatch.setattr(commands, "inspect_checkpoint", lambda p: _boom(p))
    line = error_line(cli("inspect", tiny_checkpoint), 3, "internal error: RuntimeError: "
                      "injected bug", "rerun with --debug")
    assert line.startswith("sao-harness: internal error")


def test_debug_shows_the_traceback(monkeypatch, tiny_checkpoint):
    from harness.cli import inspect as commands

    monkeypatch.setattr(commands, "inspect_checkpoint", lambda p: _boom(p))
    res = cli("inspect", "--debug", tiny_checkpoint)
    assert res.code == 3
    assert "Traceback" in res.err and "injected bug" in res.err


def test_memory_error_is_a_resource_failure_not_a_verdict(monkeypatch, tiny_checkpoint):
    from harness.cli import inspect as commands

    def oom(p):
        raise MemoryError()

    monkeypatch.setattr(commands, "inspect_checkpoint", oom)
    bad_input(cli("inspect", tiny_checkpoint), "out of memory")


def test_gate_memory_error_is_exit_2_not_a_reject(monkeypatch, tiny_checkpoint, tmp_path):
    from harness.gate.stages import Gate

    def oom(self, st):
        raise MemoryError("probe buffers")

    monkeypatch.setattr(Gate, "audio", oom)
    res = cli("gate", tiny_checkpoint, "--no-parity", "--frames", "64", "--report",
              tmp_path / "r", "--json")
    bad_input(res, "out of memory in the audio stage", "not a verdict on the weights")
    assert_no_verdict(res.out)
    assert not (tmp_path / "r" / "result.json").exists()


def test_usage_error_is_one_line():
    bad_input(cli("generate", "--out", "x.wav", "--no-such-option"), "unrecognized arguments")
    bad_input(cli("frobnicate"), "invalid choice")


# -- the gate: like with like, no stale verdict ----------------------------------------
def test_candidate_without_t5_is_judged_with_the_approved_t5(tiny_copy, tiny_checkpoint):
    """It got 99 T5 shape failures (t5-base defaults against a tiny T5): now an accept, and
    the report says which T5 was used."""
    cand = tiny_copy()
    shutil.rmtree(cand / "t5")
    res = cli("gate", cand, "--baseline", tiny_checkpoint, "--frames", "64", "--json")
    out = json.loads(res.out)
    assert (res.code, out["verdict"]) == (0, "accept"), out["reasons"]
    rows = next(s for s in out["stages"] if s["name"] == "structure")["rows"]
    assert any(r.get("item") == "t5" and "approved checkpoint's T5" in r["value"] for r in rows)


def test_stale_verdict_is_removed_before_work(tiny_copy, tmp_path):
    """A report dir reused from an accepted run: a malformed candidate must not leave the old
    `accept` there, whatever happens to this run."""
    report = tmp_path / "r"
    report.mkdir()
    (report / "result.json").write_text('{"verdict": "accept"}')
    (report / "per_layer_drift.png").write_bytes(b"")
    ckpt = tiny_copy()
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 4)
    res = cli("gate", ckpt, "--expect", "update", "--no-parity", "--report", report)
    assert res.code == 1
    assert json.loads((report / "result.json").read_text())["verdict"] == "reject"
    assert not (report / "per_layer_drift.png").exists()
    assert not [p for p in report.iterdir() if p.name.startswith(".")]


def test_stale_verdict_is_removed_on_bad_options(tiny_checkpoint, tmp_path):
    report = tmp_path / "r"
    report.mkdir()
    (report / "result.json").write_text('{"verdict": "accept"}')
    res = cli("gate", tiny_checkpoint, "--frames", "0", "--report", report)
    bad_input(res, "--frames 0")
    assert not (report / "result.json").exists()


def test_report_files_follow_the_umask(tiny_copy, tmp_path):
    ckpt = tiny_copy()
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 4)
    cli("gate", ckpt, "--expect", "update", "--no-parity", "--report", tmp_path / "r")
    import os
    mask = os.umask(0)
    os.umask(mask)
    for p in (tmp_path / "r").iterdir():
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p
