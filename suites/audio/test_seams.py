"""The seam detector on real music: a clip stitched from pieces that do not continue each other
is flagged at any period (frame multiples or not, periodic or a single seam), the same clip
unstitched is not, and a note onset out of silence is not mistaken for a seam."""

from __future__ import annotations

import numpy as np
import pytest

from harness.audio import check, faults, metrics


def _limit():
    return check.thresholds()["seam_db"]["max"]


@pytest.fixture(scope="module")
def music(test_clips):
    # two sources: a Vorbis track and a MIDI render
    return [c for c in test_clips if c.name in ("noiz2sa/stg1", "openmsx/harp_harmony")]


@pytest.mark.parametrize("period", [2048, 12345, 65536, 150000])
def test_seams_flagged_at_any_period(music, period):
    assert len(music) == 2
    for clip in music:
        clean = metrics.seam_db(clip.audio)
        stitched = metrics.seam_db(faults.seams(clip.audio, clip.sr, period))
        assert clean <= _limit() < stitched, (clip.name, period, clean, stitched)


@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_single_seam_is_flagged_on_tonal_music(test_clips, where):
    """One seam (two chunks) anywhere: the detector needs no period. On tonal music every
    position of 19 is flagged by >= 5 dB (thresholds.toml); on dense or noisy music a lone seam
    can hide among the music's own transients (thresholds.toml names the clips and the dB)."""
    tonal = [c for c in test_clips
             if c.name in ("openmsx/harp_harmony", "openmsx/coconut_run2", "openmsx/linns_basket")]
    assert len(tonal) == 3
    for clip in tonal:
        y = faults.seams(clip.audio, clip.sr, at=[int(clip.audio.shape[1] * where)])
        assert metrics.seam_db(y) > _limit() + 5, (clip.name, metrics.seam_db(y))


def test_a_cut_in_one_channel_is_not_a_seam():
    """A decode stitched without overlap breaks every channel at the same sample; a click in
    one channel only (a hard-panned hi-hat) is not a seam."""
    sr = 44100
    t = np.arange(2 * sr) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t + 1)])
    x = (x + np.random.default_rng(0).standard_normal(x.shape) * 1e-3).astype(np.float32)
    both = faults.seams(x, sr, at=[sr])
    left = x.copy()
    left[0] = both[0]
    assert metrics.seam_db(x) <= _limit() and metrics.seam_db(left) <= _limit()
    assert metrics.seam_db(both) > _limit()


def test_note_onset_out_of_silence_is_not_a_seam():
    """A plucked note starting from silence is a jump in level, not in the waveform."""
    sr = 44100
    t = np.arange(sr) / sr
    note = np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t) * np.minimum(t / 0.002, 1)
    x = np.zeros((2, 2 * sr), np.float32)
    x[:, sr // 2: sr // 2 + sr] = 0.3 * note
    x += np.random.default_rng(0).standard_normal(x.shape).astype(np.float32) * 1e-4
    assert metrics.seam_db(x) <= _limit()
    y = faults.seams(x, sr, at=[sr])  # one cut mid-sustain: the note's waveform jumps
    assert metrics.seam_db(y) > _limit()


def test_seam_db_is_a_free_check_with_a_threshold():
    assert "seam_db" in check.FREE and "max" in check.thresholds()["seam_db"]
