"""Metrics agree with maintained implementations: loudness is pyloudnorm's BS.1770
reference tone, RMS and DC with sox `stats`, and sox's own effects (speed, sinc low-pass,
tremolo) are caught by the metrics built for those faults."""

from __future__ import annotations

import subprocess

import numpy as np
import pyloudnorm
import pytest

from harness.audio import check, io, metrics


@pytest.fixture(scope="module")
def wav_clips(test_clips, tmp_path_factory, require_packages):
    """The MIDI test clips as 16-bit WAV (peaks < 1, so sox reads the same samples we do)."""
    require_packages(("sox",))
    d = tmp_path_factory.mktemp("wav")
    out = []
    for clip in test_clips:
        if clip.name.startswith("openmsx/"):
            path = d / (clip.name.split("/")[1] + ".wav")
            io.save(path, clip.audio, clip.sr, subtype="PCM_16")
            out.append((path, io.load(path)[0]))
    return out[:4]


def sox(*args) -> str:
    r = subprocess.run(["sox", *map(str, args)], capture_output=True, text=True, check=True)
    return r.stderr


def test_loudness_is_pyloudnorm_on_planar_audio(test_clips):
    """Our planar (C, N) wrapper reads what pyloudnorm reads on (N, C), and a -6 dB gain
    moves it by 6 LU (a transposed or mono-summed input would break one or the other)."""
    meter = pyloudnorm.Meter(44100)
    for clip in test_clips:
        ours = metrics.loudness_lufs(clip.audio, clip.sr)
        assert ours == pytest.approx(meter.integrated_loudness(clip.audio.T.astype(np.float64)))
        quieter = metrics.loudness_lufs(clip.audio * np.float32(10 ** (-6 / 20)), clip.sr)
        assert ours - quieter == pytest.approx(6.0, abs=0.01), clip.name


def test_loudness_of_the_bs1770_reference_tone():
    """BS.1770-4: a 0 dBFS 997 Hz sine in one channel of a stereo pair reads -3.01 LKFS."""
    t = np.arange(10 * 44100) / 44100
    x = np.stack([np.sin(2 * np.pi * 997 * t), np.zeros_like(t)]).astype(np.float32)
    # EBU Tech 3341's conformance tolerance is +-0.1 LU; pyloudnorm's biquad approximation
    # of the K-filter reads -3.052 here.
    assert metrics.loudness_lufs(x, 44100) == pytest.approx(-3.01, abs=0.1)


def test_rms_and_dc_match_sox_stats(wav_clips):
    for path, audio in wav_clips:
        stats = {}
        for line in sox(path, "-n", "stats").splitlines():
            key, _, rest = line.partition("  ")
            if rest.split():
                stats[key.strip()] = rest.split()[0]
        assert metrics.rms_dbfs(audio) == pytest.approx(float(stats["RMS lev dB"]), abs=0.02)
        # sox prints the signed DC of the channel with the largest |DC|, to 6 decimals
        assert metrics.dc_offset(audio) == pytest.approx(abs(float(stats["DC offset"])), abs=1e-6)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_speed_ratio_reads_sox_speed(wav_clips, tmp_path, factor):
    for path, audio in wav_clips:
        out = tmp_path / "speed.wav"
        sox(path, out, "speed", factor)
        y = io.load(out)[0]
        y = np.tile(y, (1, int(np.ceil(audio.shape[1] / y.shape[1]))))[:, :audio.shape[1]]
        assert metrics.speed_ratio(y, audio, 44100) == pytest.approx(factor, rel=0.02)


@pytest.mark.parametrize("effect,check_name", [
    (("sinc", "-4k"), "band_limit_db"),
    (("sinc", "-8k"), "band_limit_db"),
    (("tremolo", "21.533", "40"), "flicker_db"),
])
def test_sox_effects_are_flagged(wav_clips, tmp_path, effect, check_name):
    for path, audio in wav_clips:
        out = tmp_path / "fx.wav"
        sox(path, "-b", "32", "-e", "floating-point", out, *effect)
        y = io.load(out)[0][:, :audio.shape[1]]
        report = check.check_audio(y, 44100)
        assert not report[check_name].passed, (path.name, effect, str(report[check_name]))
        clean = check.check_audio(audio, 44100)
        assert clean[check_name].passed, (path.name, str(clean[check_name]))
