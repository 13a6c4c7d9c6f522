"""Planar model audio -> interleaved float WAV (harness.audio.io.write_wav), read back with
soundfile: bit-exact, L stays L, trimmed to round(seconds_total · 44100) samples."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from hypothesis import example, given

from harness.audio.io import write_wav
from suites.properties import mutants
from suites.properties.checks import assert_detects
from suites.properties.strategies import WavCase, wav_cases


def real_writer(path, audio, rate, seconds):
    return write_wav(path, audio, rate, seconds)


def check_wav_roundtrip(writer, case: WavCase, out_dir):
    path = out_dir / "out.wav"
    want = round(case.seconds * case.sample_rate)  # round(), not int(): 0.6 samples is 1
    n = writer(path, case.audio, case.sample_rate, case.seconds)
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    info = sf.info(path)
    assert rate == case.sample_rate and info.subtype == "FLOAT", f"{case}: {rate} Hz {info.subtype}"
    assert n == want and data.shape == (want, 2), \
        f"{case}: wrote {data.shape[0]} frames (reported {n}), expected round({case.seconds!r}·{case.sample_rate}) = {want}"
    for ch, name in enumerate("LR"):
        assert np.array_equal(data[:, ch], case.audio[ch, :want]), \
            f"{case}: channel {name} differs from planar row {ch} (swapped or interleaving wrong)"


WAV_EXAMPLES = [
    WavCase(2000, 999, 0.51, seed=0),  # round() != int()
    WavCase(4410, 4410 - 1, 0.0, seed=1),
    WavCase(16, 1, 0.49, seed=2),
]


@given(wav_cases())
@example(WAV_EXAMPLES[0])
@example(WavCase(524288, 485100, 0.0, seed=3))  # the full model: 11 s out of 524288 samples
def test_wav_roundtrip(tmp_path_factory, case):
    check_wav_roundtrip(real_writer, case, tmp_path_factory.mktemp("wav"))


@pytest.mark.parametrize("writer", [mutants.wav_swapped, mutants.wav_truncating,
                                    mutants.wav_untrimmed, mutants.wav_pcm16,
                                    mutants.wav_planar_reshaped], ids=lambda f: f.__name__)
def test_wav_roundtrip_catches(writer, tmp_path):
    assert_detects(check_wav_roundtrip, writer, [(c, tmp_path) for c in WAV_EXAMPLES])


def test_channels_are_distinct_in_examples():
    """L/R swaps are only visible when the channels differ."""
    for case in WAV_EXAMPLES:
        assert not np.array_equal(case.audio[0], case.audio[1])
