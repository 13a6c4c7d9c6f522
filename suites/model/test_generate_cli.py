"""`sao-harness generate` end to end on the seeded tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from suites.cli_util import assert_one_line_error, run_cli


def test_generate_writes_trimmed_interleaved_wav(tiny_checkpoint, tmp_path):
    out = tmp_path / "demo.wav"
    res = run_cli("generate", "--weights", tiny_checkpoint, "--prompt", "warm analog synth pad",
                  "--seconds", "1.25", "--steps", "4", "--out", out, "--json")
    assert res.code == 0, res.err
    info = json.loads(res.out)
    assert info["samples"] == round(1.25 * 44100)
    assert set(info["timings_s"]) == {"conditioner", "sampling", "decode", "total"}
    assert len(info["step_times_s"]) == 4
    audio, sr = sf.read(out, always_2d=True)
    assert sr == 44100 and audio.shape == (round(1.25 * 44100), 2)
    assert np.isfinite(audio).all() and audio.std() > 0
    assert [p.name for p in tmp_path.iterdir()] == ["demo.wav"]  # no temp file left


def test_prompt_ids_equal_tokenized_prompt(tiny_checkpoint, tmp_path):
    from harness.model.tokenizer import Tokenizer
    ids, mask = Tokenizer.from_file(tiny_checkpoint / "t5" / "spiece.model").encode(["drum loop"])
    text_ids = ",".join(str(i) for i in ids[0][: mask.sum()])
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    common = ["--weights", tiny_checkpoint, "--steps", "2", "--seconds", "0.5"]
    assert run_cli("generate", *common, "--prompt", "drum loop", "--out", a).code == 0
    assert run_cli("generate", *common, "--prompt-ids", text_ids, "--out", b).code == 0
    assert np.array_equal(sf.read(a)[0], sf.read(b)[0])


def test_bad_options(tiny_checkpoint, tmp_path):
    out = tmp_path / "x.wav"
    assert_one_line_error(run_cli("generate", "--weights", tiny_checkpoint, "--seconds", "99",
                                  "--out", out), "--seconds 99")
    assert_one_line_error(run_cli("generate", "--weights", tiny_checkpoint,
                                  "--prompt-ids", "1,x", "--out", out), "--prompt-ids")
    assert_one_line_error(run_cli("generate", "--weights", tiny_checkpoint,
                                  "--out", tmp_path / "x.mp3"), ".wav")
    assert run_cli("generate", "--sampler", "heun", "--out", out).code == 2
    assert not out.exists()
