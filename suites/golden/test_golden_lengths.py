"""The tiny goldens come at two lengths, the long one past every length threshold of the MLX
code (harness/model/thresholds.py), and all of them within the golden budget."""

from __future__ import annotations

import pytest

from harness.golden.store import DEFAULT_ROOT, case_dirs, load_golden
from harness.model.config import TINY
from harness.model.thresholds import crossing_frames

LONG = "tiny-torch-long"
SHORT_FRAMES = 32
# The tiny cases' share of the golden budget (bytes on disk; the whole store's limit is in
# test_budget.py). Tiny goldens hold every intermediate at every sampler step; a new case
# that needs more must say why here. 52 MB held the synthetic-weight cases; +10 MB for the
# trained weights' own goldens from the official code, which the audio-level mutant checks on
# music-like clips are measured against (issue 15): tiny-trained-torch (9.9 MB), its euler and
# CFG paths (0.9, 1.2 MB) and 64 frames (2.2 MB; tiny goldens 61.6 MB in all).
TINY_BUDGET = 62 * 2**20


def _frames(case: str) -> tuple[int, int]:
    g = load_golden(case, DEFAULT_ROOT)
    batch, _, frames = g["input.noise"].shape
    return batch, frames


def test_tiny_goldens_at_two_lengths():
    lengths = {_frames(d.name)[1] for d in case_dirs(DEFAULT_ROOT) if d.name.startswith("tiny-")}
    assert SHORT_FRAMES in lengths and max(lengths) > SHORT_FRAMES, lengths


def test_long_golden_crosses_every_length_threshold():
    if not (DEFAULT_ROOT / LONG).is_dir():
        pytest.fail(f"missing: committed golden {DEFAULT_ROOT / LONG}")
    batch, frames = _frames(LONG)
    crossing = crossing_frames(TINY, batch)
    for path, at in crossing.items():
        assert at is None or frames >= at, f"{LONG} ({batch} x {frames} frames) misses {path} " \
                                           f"(from {at} frames)"
    assert any(at is not None for at in crossing.values())
    # RoPE past the 33 positions of a 32-frame golden, up to the model's whole clip
    assert frames + 1 > SHORT_FRAMES + 1 and frames == TINY.latent_frames
    names = load_golden(LONG, DEFAULT_ROOT).manifest["order"]
    assert "model.model.transformer.layers.0.self_attn.q_rotary" in names
    assert {"pretransform.model.decoder.input", "pretransform.model", "output.audio"} <= set(names)


def _size(d) -> int:
    return sum(f.stat().st_size for f in d.iterdir() if f.is_file())


def test_tiny_goldens_within_their_budget():
    tiny = sum(_size(d) for d in case_dirs(DEFAULT_ROOT) if d.name.startswith("tiny-"))
    assert tiny <= TINY_BUDGET, f"tiny goldens {tiny / 2**20:.1f} MB > {TINY_BUDGET / 2**20:g} MB"
