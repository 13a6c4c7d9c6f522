"""The catalogue on the trained tiny model (nightly: ~3 min): its clips are closer to music,
so more absolute audio checks hold on the unmutated clip and can hear mutants on their own.
The heard-by table before/after is tools/train_tiny/README.md.

Measured on the committed weights: the clean clip passes band limit, seams, DC, loudness, the
channel checks and the 5512 Hz stride comb (-44.1 dB), not yet flicker (19.1 dB) or the other
stride combs (the decoder's buzz, tools/train_tiny/README.md); decode-chunks-no-overlap (one
seam in 160 frames) reads seam_db 40.2 against 11.8 clean, threshold 30: heard.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.mutants.run import CATALOGUE, Bench, run_catalogue

ABSOLUTE = {"band_limit_db", "seam_db", "frame_seam_db", "dc_offset", "loudness_lufs",
            "channel_correlation", "comb_5512hz_db"}
# mutant -> an absolute check that hears it on the trained model's clip (none did on the
# synthetic tiny model's noise-like clip but snake-no-exp's loudness)
HEARD = {"convt-weight-layout": "channel_correlation", "snake-no-exp": "dc_offset",
         "decode-chunks-no-overlap": "seam_db", "convt-weight-norm-wrong-dim": "comb_5512hz_db",
         "conv-padding-off-by-one": "comb_5512hz_db"}
LATENTS = Path(__file__).parents[1] / "model" / "data" / "tiny_trained_music_latents.npz"


@pytest.fixture(scope="module")
def bench():
    return Bench(model="tiny-trained")


@pytest.mark.nightly
def test_trained_clip_passes_the_absolute_checks(bench):
    assert ABSOLUTE <= bench.audio_applicable, sorted(ABSOLUTE - bench.audio_applicable)


@pytest.mark.nightly
def test_trained_model_hears_decoder_bugs_with_absolute_checks(bench):
    control, *mutants = run_catalogue(None, bench)
    assert not control.caught, control.to_dict()
    by = {o.name: o for o in mutants}
    for name, check in HEARD.items():
        assert check in by[name].heard_by, by[name].to_dict()


# mutant -> the trained golden case that alone localizes it: the pingpong case at cfg 1 and 8
# frames never runs euler, CFG or RoPE past position 33.
PATHS = {"euler-dt-sign": "tiny-trained-torch-euler", "cfg-halves-swapped": "tiny-trained-torch-cfg",
         "rope-positions-clamped": "tiny-trained-torch-long"}


@pytest.mark.nightly
def test_trained_cases_localize_the_sampler_path_and_long_input_mutants(bench):
    _, *outcomes = run_catalogue(list(PATHS), bench)
    for o in outcomes:
        assert o.localized and o.case == PATHS[o.name], o.to_dict()


@pytest.mark.nightly
def test_trained_decode_stitched_without_overlap_is_heard_on_held_out_music():
    """The trained VAE decoding the held-out music latents (160 frames: one seam at frame 128)
    with decode-chunks-no-overlap: seam_db flags it (stg1 32.3, busy_schedule 43.1,
    threshold 30), and frame_seam_db (the same 32.3 / 43.1: the seam is on the frame grid;
    threshold 26); the unmutated decodes are not flagged (13.9 / 11.3; on the grid
    6.6 / 8.4)."""
    import mlx.core as mx

    from harness.audio import check, metrics
    from harness.weights.load import load_model
    from harness.weights.trained import trained_checkpoint

    model, ckpt = load_model(trained_checkpoint())
    limits = {c: check.thresholds()[c]["max"] for c in ("seam_db", "frame_seam_db")}
    lat = np.load(LATENTS)
    for key in sorted(lat.files):
        z = mx.array(lat[key][None])
        clean = np.array(model.vae.decode(z).astype(mx.float32))[0]
        with CATALOGUE["decode-chunks-no-overlap"].apply(model, ckpt):
            stitched = np.array(model.vae.decode(z).astype(mx.float32))[0]
        for name, limit in limits.items():
            metric = getattr(metrics, name)
            assert metric(clean) <= limit < metric(stitched), (key, name, metric(clean), metric(stitched))


# mutant -> the trained case that localizes it fastest (fp16 decodes slowly: euler has the
# fewest decoder replays). Under the general fp32 floors (35 dB vae, 75 dB dit) all three
# passed every trained golden; the trained floors (tolerances.FP32_TINY_TRAINED) name them.
FLOORED = {"layernorm-eps-1e-6-vs-1e-5": "tiny-trained-torch",
           "qk-norm-eps-1e-5-vs-1e-6": "tiny-trained-torch",
           "fp16-vae-overflow": "tiny-trained-torch-euler"}


def test_trained_floors_localize_the_eps_and_fp16_slips():
    from harness.compare.divergence import compare_golden
    from harness.golden.store import DEFAULT_ROOT, load_golden
    from harness.weights.load import load_model
    from harness.weights.trained import trained_checkpoint

    model, ckpt = load_model(trained_checkpoint())  # unmutated, it passes these cases:
    for name, case in FLOORED.items():                 # suites/golden/test_golden_parity.py
        golden = load_golden(case, DEFAULT_ROOT)
        with CATALOGUE[name].apply(model, ckpt):
            first = compare_golden(model, golden).first
        assert first is not None and first.name == CATALOGUE[name].expected_module, (name, first)
        assert first.where == "local" and np.isfinite(first.full.snr_db), (name, first.where)


def test_before_after_table_puts_absolute_checks_first_in_bold():
    from harness.mutants.run import Outcome, heard_before_after

    def run(heard):
        return [Outcome("unmutated", "-", "none").to_dict(),
                Outcome("m", "x", "s", heard_by=heard, localized_to="x", where="local",
                        case="c", caught_by=["golden"] + [f"audio:{h}" for h in heard]).to_dict()]

    rows = heard_before_after(run([]), run(["seam_db", "mrstft_distance"])).splitlines()
    assert rows[2] == "| unmutated | - | - | - | - |"
    assert rows[3] == "| m | x (local, c) | - | x (local, c) | **seam_db**, mrstft_distance |"


def test_before_file_that_is_not_a_run_is_bad_input(tmp_path):
    from harness.cli.mutants import _read_before
    from harness.errors import BadInput

    bad = tmp_path / "before.json"
    bad.write_text('{"mutants": 3}')
    with pytest.raises(BadInput, match="not a `mutants run --json` output"):
        _read_before(str(bad))
    bad.write_text('{"control": {"name": "unmutated"}, "mutants": [{"name": "m"}]}')
    assert [r["name"] for r in _read_before(str(bad))] == ["unmutated", "m"]
