"""Options the model cannot take: refused before any work with exit 2 and one line stating
the sane range; outputs that are not regular files are never replaced."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from suites.cli_util import assert_no_verdict
from suites.robustness.contract import bad_input, cli, run


GENERATE = {  # options -> words the one line must hold
    "steps-zero": (["--steps", "0"], "--steps 0 outside [1, 1000]"),
    "steps-negative": (["--steps", "-3"], "--steps -3 outside"),
    "steps-billion": (["--steps", "1000000000"], "--steps 1000000000 outside [1, 1000]"),
    "steps-1001": (["--steps", "1001"], "outside [1, 1000]"),
    "steps-float": (["--steps", "2.5"], "invalid int value"),
    "steps-text": (["--steps", "many"], "invalid int value"),
    "cfg-nan": (["--cfg-scale", "nan"], "--cfg-scale nan outside (0, 100]"),
    "cfg-inf": (["--cfg-scale", "inf"], "--cfg-scale inf outside"),
    "cfg-minus-inf": (["--cfg-scale=-inf"], "--cfg-scale -inf outside"),
    "cfg-1e30": (["--cfg-scale", "1e30"], "--cfg-scale 1e+30 outside (0, 100]"),
    "cfg-101": (["--cfg-scale", "101"], "outside (0, 100]"),
    "cfg-zero": (["--cfg-scale", "0"], "--cfg-scale 0.0 outside"),
    "cfg-negative": (["--cfg-scale", "-1"], "--cfg-scale -1.0 outside"),
    "cfg-text": (["--cfg-scale", "high"], "invalid float value"),
    "seed-negative": (["--seed", "-1"], "--seed -1 outside [0, 2**64-1]"),
    "seed-2-64": (["--seed", str(2**64)], "outside [0, 2**64-1]"),
    "seed-huge": (["--seed", "9" * 60], "outside [0, 2**64-1]"),
    "seconds-nan": (["--seconds", "nan"], "--seconds nan must be a finite number > 0"),
    "seconds-inf": (["--seconds", "inf"], "--seconds inf"),
    "seconds-zero": (["--seconds", "0"], "--seconds 0.0"),
    "seconds-negative": (["--seconds", "-5"], "--seconds -5.0"),
    "seconds-past-model": (["--seconds", "1000"], "outside (0, 1.486]"),
    "prompt-not-utf8": (["--prompt", "drums \udcff\udcfe"], "--prompt is not valid UTF-8"),
    "prompt-huge": (["--prompt", "a" * 100_001], "--prompt holds 100001 characters"),
    "ids-vocab-size": (["--prompt-ids", "5,1024"], "id 1024 outside [0, 1024)"),
    "ids-huge": (["--prompt-ids", str(2**40)], f"id {2**40} outside [0, 1024)"),
    "ids-2-63": (["--prompt-ids", str(2**63)], "outside [0, 1024)"),
    "ids-negative": (["--prompt-ids=-1,1"], "id -1 outside"),
    "ids-text": (["--prompt-ids", "1,a"], "comma-separated integers"),
    "ids-empty": (["--prompt-ids", ","], "needs 1..64 ids"),
    "ids-too-many": (["--prompt-ids", ",".join(["5"] * 65)], "needs 1..64 ids, got 65"),
    "sampler-unknown": (["--sampler", "ddim"], "invalid choice"),
    "both-prompts": (["--prompt", "x", "--prompt-ids", "1"], "not allowed with"),
}


@pytest.mark.parametrize("name", list(GENERATE))
def test_generate_option(name, tiny_checkpoint, tmp_path):
    argv, needle = GENERATE[name]
    out = tmp_path / "out.wav"
    res = cli("generate", "--weights", tiny_checkpoint, *argv, "--out", out)
    bad_input(res, needle)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp file


def test_negative_seed_in_a_real_process(tmp_path):
    res = run("generate", "--seed", "-7", "--out", tmp_path / "o.wav")
    bad_input(res, "--seed -7 outside")


def test_non_utf8_prompt_bytes_in_a_real_process(tmp_path, tiny_checkpoint):
    """Undecodable argv bytes (a Latin-1 terminal): exit 2, one line, no traceback."""
    p = subprocess.run([sys.executable, "-m", "harness.cli", "generate", "--weights",
                        str(tiny_checkpoint), "--prompt", b"caf\xe9 jazz",
                        "--out", str(tmp_path / "o.wav")], capture_output=True)
    lines = p.stderr.decode("utf-8", "replace").splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "not valid UTF-8" in lines[0], p.stderr
    assert not (tmp_path / "o.wav").exists()


def test_model_level_guard_on_token_ids(tiny_model):
    """The model itself refuses ids outside the vocabulary (mx.take would read wild memory)."""
    import numpy as np

    model = tiny_model[0] if isinstance(tiny_model, tuple) else tiny_model
    ids = np.array([[2**40, 1]], dtype=np.int64)
    with pytest.raises(ValueError, match="token ids must lie in"):
        model.condition(ids, np.ones_like(ids), 1.0)


GATE = {
    "frames-zero": (["--frames", "0"], "--frames 0 outside [1, 4096]"),
    "frames-negative": (["--frames", "-1"], "--frames -1 outside"),
    "frames-billion": (["--frames", "1000000000"], "--frames 1000000000 outside [1, 4096]"),
    "frames-text": (["--frames", "lots"], "invalid int value"),
    "timeout-zero": (["--timeout", "0"], "--timeout must be a finite number"),
    "timeout-nan": (["--timeout", "nan"], "--timeout must be a finite number"),
    "timeout-inf": (["--timeout", "inf"], "--timeout must be a finite number"),
    "timeout-negative": (["--timeout", "-3"], "--timeout must be"),
    "expect-unknown": (["--expect", "maybe"], "invalid choice"),
}


@pytest.mark.parametrize("name", list(GATE))
def test_gate_option(name, tiny_checkpoint, tmp_path):
    argv, needle = GATE[name]
    res = cli("gate", tiny_checkpoint, "--no-parity", *argv, "--report", tmp_path / "r", "--json")
    bad_input(res, needle)
    assert_no_verdict(res.out)
    assert not (tmp_path / "r" / "result.json").exists()


def test_gate_frames_past_the_model_is_not_a_verdict(tiny_checkpoint):
    """2000 frames is within the static range but past the tiny model's 1024: exit 2, not a
    reject of good weights."""
    res = cli("gate", tiny_checkpoint, "--no-parity", "--frames", "2000", "--json")
    bad_input(res, "--frames 2000 exceeds this model's length of 1024")
    assert_no_verdict(res.out)


@pytest.fixture
def device_paths(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    (tmp_path / "adir.wav").mkdir()
    return {"dev-null": "/dev/null", "fifo": fifo, "directory": tmp_path / "adir.wav"}


@pytest.mark.parametrize("kind", ["dev-null", "fifo", "directory"])
def test_generate_never_replaces_a_non_regular_output(kind, device_paths, tiny_checkpoint):
    target = device_paths[kind]
    bad_input(cli("generate", "--weights", tiny_checkpoint, "--out", target), target,
              "cannot write")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


@pytest.mark.parametrize("kind", ["dev-null", "fifo", "directory"])
def test_extract_never_replaces_a_non_regular_output(kind, device_paths, tmp_path):
    target = device_paths[kind]
    bad_input(cli("weights", "extract", tmp_path, "--out", target), target, "cannot write")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_extract_force_is_the_only_way_past_a_fifo(device_paths, tmp_path):
    """--force lets the run proceed to its own inputs (here an empty TFLite dir: exit 2 on
    that, not on the output)."""
    res = cli("weights", "extract", tmp_path / "none", "--out", device_paths["fifo"], "--force")
    line = bad_input(res)
    assert "cannot write" not in line
