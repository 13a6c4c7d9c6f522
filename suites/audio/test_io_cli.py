"""Bad input gives one line naming the file and exit 2; `sao-harness audio check` exit codes
and JSON; the Python API on generated-style planar arrays."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harness import cli
from harness.audio import check, faults, io
from harness.errors import BadInput

SAO = Path(sys.executable).with_name("sao-harness")


def _bad_files(d: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the fragment the one-line error must contain)"""
    text = d / "notes.wav"
    text.write_text("this is not audio\n")
    empty = d / "empty.flac"
    empty.write_bytes(b"")
    nan = d / "nan.wav"
    x = np.zeros((2, 44100), np.float32)
    x[1, 100] = np.nan
    sf.write(nan, x.T, 44100, subtype="FLOAT")
    rate = d / "rate.wav"
    sf.write(rate, np.zeros((4800, 2), np.float32), 48000)
    return {"non-audio": (text, "not a readable WAV/FLAC/OGG file"),
            "empty": (empty, "empty file"),
            "nan": (nan, "1 NaN/Inf samples"),
            "sample rate": (rate, "sample rate 48000 Hz, expected 44100 Hz"),
            "missing": (d / "absent.ogg", "no such file")}


def test_load_rejects_bad_files_with_one_line(tmp_path):
    for name, (path, fragment) in _bad_files(tmp_path).items():
        with pytest.raises(BadInput) as e:
            io.load(path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg and fragment in msg, (name, msg)


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for name, (path, fragment) in _bad_files(tmp_path).items():
        assert cli.main(["audio", "check", str(path)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and fragment in err, (name, err)


def test_api_rejects_bad_arrays():
    x = np.zeros((2, 44100), np.float32)
    for audio, sr, fragment in [(x, 48000, "sample rate 48000"),
                                (x.T.copy(), 44100, "looks like (samples, channels)"),
                                (np.zeros((3, 5, 7), np.float32), 44100, "planar"),
                                (x.astype(np.int16), 44100, "floating point")]:
        with pytest.raises(BadInput, match=re.escape(fragment)):
            check.check_audio(audio, sr)
    with pytest.raises(BadInput, match="reference has shape"):
        check.check_audio(x, 44100, reference=x[:, :100])


def test_api_subset_of_checks():
    x = np.random.default_rng(0).standard_normal((2, check.MIN_SAMPLES)).astype(np.float32) * 0.1
    report = check.check_audio(x, 44100, reference=x, names=["dc_offset", "speed_ratio"])
    assert [c.name for c in report.checks] == ["dc_offset", "speed_ratio"] and report.passed
    with pytest.raises(ValueError, match=re.escape("no such checks: ['dc_ofset']")):
        check.check_audio(x, 44100, names=["dc_ofset"])


@pytest.fixture(scope="module")
def clip_files(test_clips, tmp_path_factory):
    """A real test clip as FLAC, and the same clip low-passed at 4 kHz."""
    clip = next(c for c in test_clips if c.name == "openmsx/busy_schedule")
    d = tmp_path_factory.mktemp("cli")
    clean, bad = d / "clean.flac", d / "phone.wav"
    io.save(clean, clip.audio, subtype="PCM_24")
    io.save(bad, faults.apply("lowpass_4k", clip.audio, clip.sr), subtype="FLOAT")
    return clean, bad


def test_cli_json_pass_and_fail(clip_files, capsys):
    clean, bad = clip_files
    assert cli.main(["audio", "check", str(clean), "--reference", str(clean), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["file"] == str(clean) and out["passed"] is True
    names = [c["name"] for c in out["checks"]]
    assert names == list(check.FREE) + list(check.RELATIVE)
    assert all(set(c) == {"name", "value", "threshold", "passed"} for c in out["checks"])
    assert cli.main(["audio", "check", str(bad), "--reference", str(clean), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    failed = {c["name"] for c in out["checks"] if not c["passed"]}
    assert out["passed"] is False and "band_limit_db" in failed


def test_console_script(clip_files):
    """The installed `sao-harness` executable: text report, exit 1 on a fault, 2 on bad input."""
    clean, bad = clip_files
    r = subprocess.run([str(SAO), "audio", "check", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "FAIL band_limit_db" in r.stdout and "FAIL" in r.stdout.strip().splitlines()[-1]
    r = subprocess.run([str(SAO), "audio", "check", str(clean), "--reference", str(bad.parent /
                        "nothing.wav")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no such file" in r.stderr


def test_api_on_generated_style_array(test_clips):
    """check_audio takes the model's planar (2, N) float32 output directly; NaN samples fail a
    check (not bad input) so the report still lists the other checks."""
    x = test_clips[0].audio
    assert x.shape[0] == 2 and x.dtype == np.float32
    assert check.check_audio(x, 44100).passed
    report = check.check_audio(faults.apply("nan", x, 44100), 44100)
    assert report.failed == ["nonfinite_samples"]


def test_too_short_for_the_checks_is_bad_input():
    from harness.audio.check import MIN_SAMPLES, check_audio
    from harness.errors import BadInput
    x = np.full((2, MIN_SAMPLES - 1), 0.1, np.float32)
    with pytest.raises(BadInput, match="the checks need at least 32768"):
        check_audio(x, 44100)
