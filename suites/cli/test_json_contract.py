"""Every checking command's `--json`, on success and on bad input, is one JSON object on stdout
with the common keys (harness/cli/output.py): `passed`, `harness_version`, `command`,
`inputs` ({file given: sha256}); bad input adds `error` (one line) and `exit_code` 2, and the
same line still goes to stderr. In process (`main(argv)`) to stay fast; the slow successes
(gate, mutants, port, benchmark gate, calibrate) run under `nightly`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import harness
from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "golden"
SMALL_CASE = GOLDEN / "tiny-torch-euler"  # the smallest tiny golden (16 frames, 1 prompt)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_json(capsys, *argv) -> tuple[int, dict, str]:
    code = main([*map(str, argv), "--json"])
    cap = capsys.readouterr()
    lines = [l for l in cap.out.splitlines() if l.strip()]
    assert lines, f"`{' '.join(map(str, argv))} --json` printed nothing on stdout"
    doc = json.loads(cap.out)  # one object, nothing else on stdout
    assert isinstance(doc, dict)
    assert isinstance(doc["passed"], bool)
    assert doc["harness_version"] == harness.__version__
    assert isinstance(doc["inputs"], dict)
    return code, doc, cap.err


def bad(capsys, needle: str, *argv) -> dict:
    code, doc, err = run_json(capsys, *argv)
    assert code == 2, (code, doc)
    assert doc["passed"] is False and doc["exit_code"] == 2
    assert needle in doc["error"] and "\n" not in doc["error"]
    lines = [l for l in err.splitlines() if l.startswith("sao-harness: ")]
    assert len(lines) == 1 and doc["error"] in lines[0], err  # the same one line on stderr
    return doc


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    t = np.arange(44100) / 44100
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path_factory.mktemp("clip") / "tone.wav"
    sf.write(path, np.stack([x, x], 1).astype(np.float32), 44100, subtype="FLOAT")
    return path


# -- success (and a check that says no) ---------------------------------------------------------

def test_inspect(capsys, tiny_checkpoint):
    code, doc, _ = run_json(capsys, "inspect", tiny_checkpoint)
    model = tiny_checkpoint / "model.safetensors"
    assert code == 0 and doc["passed"] is True and doc["command"] == "inspect"
    assert doc["inputs"] == {str(model): sha256(model)}


def test_audio_check(capsys, clip):
    code, doc, _ = run_json(capsys, "audio", "check", clip, "--reference", clip)
    assert doc["command"] == "audio check" and doc["inputs"] == {str(clip): sha256(clip)}
    assert code == (0 if doc["passed"] else 1) and doc["checks"]


def test_weights_diff_same_and_different(capsys, tiny_checkpoint, tmp_path):
    code, doc, _ = run_json(capsys, "weights", "diff", tiny_checkpoint, tiny_checkpoint)
    assert code == 0 and doc["passed"] is True and doc["verdict"] == "same"
    assert main(["synth", "--seed", "1", "--out", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    code, doc, _ = run_json(capsys, "weights", "diff", tiny_checkpoint, tmp_path / "other")
    assert code == 1 and doc["passed"] is False and doc["verdict"] == "different"
    assert len(doc["inputs"]) == 2


def test_golden_verify_and_list(capsys):
    code, doc, _ = run_json(capsys, "golden", "verify", "--golden-dir", SMALL_CASE)
    assert code == 0 and doc["passed"] is True and doc["cases"][0]["case"] == SMALL_CASE.name
    code, doc, _ = run_json(capsys, "golden", "list")
    assert code == 0 and doc["passed"] is True  # an object, not a bare list
    assert {c["case"] for c in doc["cases"]} >= {"tiny-torch", SMALL_CASE.name}


def test_compare(capsys, tiny_checkpoint):
    code, doc, err = run_json(capsys, "compare", "--case", SMALL_CASE.name,
                              "--weights", tiny_checkpoint)
    assert code == 0 and doc["passed"] is True and doc["cases"][0]["case"] == SMALL_CASE.name
    model = tiny_checkpoint / "model.safetensors"
    assert doc["inputs"] == {str(model): sha256(model)}
    assert f"comparing with golden {SMALL_CASE.name}" in err  # progress on stderr


def test_generate(capsys, tmp_path):
    code, doc, err = run_json(capsys, "generate", "--prompt-ids", "5,1", "--steps", "2",
                              "--seconds", "0.5", "--out", tmp_path / "a.wav")
    assert code == 0 and doc["passed"] is True and doc["samples"] == 22050
    assert "sampler step 2/2" in err and "decoding" in err


def test_weights_extract(capsys, tmp_path):
    micro = ROOT / "suites/weights/data/tflite-micro"
    code, doc, _ = run_json(capsys, "weights", "extract", micro, "--config", micro,
                            "--out", tmp_path / "x.safetensors")
    assert code == 0 and doc["passed"] is True and doc["mapped"] > 0
    tflite = sorted(micro.glob("*.tflite"))
    assert doc["inputs"] == {str(f): sha256(f) for f in tflite}


def test_bench_table(capsys):
    code, doc, err = run_json(capsys, "bench", "--peers", "none", "--stages", "t5")
    assert code == 0 and doc["passed"] is True and [r["stage"] for r in doc["rows"]] == ["t5"]
    assert "bench: mlx t5" in err


# -- bad input: an error object on stdout, the line on stderr, exit 2 --------------------------

BAD = {
    "inspect": ("no such file", ["inspect", "{missing}"]),
    "audio check": ("no such file", ["audio", "check", "{missing}"]),
    "weights diff": ("no such file", ["weights", "diff", "{missing}", "{missing}"]),
    "weights extract": ("", ["weights", "extract", "{missing}", "--out", "{tmp}/x.safetensors"]),
    "golden verify": ("does not exist", ["golden", "verify", "--golden-dir", "{missing}"]),
    "golden list": ("", ["golden", "list", "--golden-dir", "{missing}"]),
    "golden record": ("", ["golden", "record", "--case", "x", "--synth", "nosuchpreset",
                           "--golden-dir", "{tmp}"]),
    "golden calibrate": ("is a directory", ["golden", "calibrate", "--out", "{tmp}"]),
    "compare": ("", ["compare", "--case", "nosuchcase"]),
    "generate": ("--steps 0 outside", ["generate", "--steps", "0", "--out", "{tmp}/a.wav"]),
    "gate": ("", ["gate", "{missing}", "--frames", "0"]),
    "mutants run": ("unknown mutant", ["mutants", "run", "--only", "nosuchmutant"]),
    "port check": ("", ["port", "check", "nosuchmodule_xyz:Port"]),
    "bench compare": ("missing", ["bench", "compare", "--machine-class", "no-such-class"]),
    "usage": ("(see --help)", ["inspect"]),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_an_error_object(name, capsys, tmp_path):
    needle, argv = BAD[name]
    missing = tmp_path / "absent"
    doc = bad(capsys, needle, *[a.format(missing=missing, tmp=tmp_path) for a in argv])
    if name != "usage":
        assert doc["command"] == name


def test_missing_input_is_listed_without_hash(capsys, tmp_path):
    doc = bad(capsys, "no such file", "inspect", tmp_path / "absent")
    assert doc["inputs"] == {str(tmp_path / "absent"): None}


def test_internal_error_is_an_error_object(capsys, monkeypatch, tiny_checkpoint):
    from harness.cli import inspect as inspect_cmd

    def boom(path):
        raise RuntimeError("injected")

    monkeypatch.setattr(inspect_cmd, "inspect_checkpoint", boom)
    code, doc, err = run_json(capsys, "inspect", tiny_checkpoint)
    assert code == 3 and doc["passed"] is False and doc["exit_code"] == 3
    assert "RuntimeError: injected" in doc["error"] and "internal error" in err


# -- the slow successes ---------------------------------------------------------------------------

@pytest.mark.nightly
def test_gate_accepts_tiny_against_itself(capsys, tiny_checkpoint, tmp_path):
    code, doc, err = run_json(capsys, "gate", tiny_checkpoint, "--baseline", tiny_checkpoint,
                              "--expect", "same")
    assert code == 0 and doc["passed"] is True and doc["verdict"] == "accept"
    assert len(doc["inputs"]) == 1 and "gate: parity" in err


@pytest.mark.nightly
def test_mutants_run_one(capsys):
    code, doc, err = run_json(capsys, "mutants", "run", "--only", "rope-interleaved",
                              "--case", "tiny-torch")
    assert code == 0 and doc["passed"] is True and doc["caught"] == 1
    assert "mutant 1/1: rope-interleaved" in err


@pytest.mark.nightly
def test_port_check_bundled(capsys, tiny_checkpoint):
    code, doc, _ = run_json(capsys, "port", "check", "bundled", "--weights", tiny_checkpoint,
                            "--stages", "text_encoder,conditioner")
    assert code == 0 and doc["passed"] is True and doc["command"] == "port check"


@pytest.mark.nightly
def test_golden_calibrate(capsys, tmp_path):
    code, doc, _ = run_json(capsys, "golden", "calibrate", "--case", SMALL_CASE.name,
                            "--out", tmp_path / "floors.json")
    assert code == 0 and doc["passed"] is True and doc["policies"]
