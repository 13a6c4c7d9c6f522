"""The gate on full-size checkpoints: an fp16 re-encode of the real-size DiT is accepted
(its drift is what drift_tolerances.toml was calibrated on), and the tensor diff names a
q/k swap in a real-size fused projection."""

from __future__ import annotations

import gate_variants as gv
import pytest

from harness.gate.weightdiff import CHANGED, diff_weights

pytestmark = pytest.mark.full
FRAMES = 8  # the full VAE decodes 16384 samples from it; SNR does not depend on length


def test_full_fp16_dit_accepted(full_checkpoint, gate, tmp_path):
    cand = gv.fp16_dit(full_checkpoint, tmp_path / "fp16")
    r = gate(cand, full_checkpoint, "same", frames=FRAMES)
    assert r.verdict == "accept", r.reasons
    assert "tolerance class fp16" in r.stage("weights").summary
    worst = {}
    for row in r.stage("drift").rows:
        worst[row["stage"]] = min(worst.get(row["stage"], float("inf")), float(row["snr_db"]))
    assert worst["dit"] < float("inf")  # the rounding reached the outputs, within tolerance


def test_full_qk_swap_named(full_checkpoint, tmp_path):
    cand = gv.qk_swapped(full_checkpoint, tmp_path / "qk")
    ours, our_dtypes = gv.read(cand / "model.safetensors")
    theirs, their_dtypes = gv.read(full_checkpoint / "model.safetensors")
    changed = [d for d in diff_weights(ours, our_dtypes, theirs, their_dtypes) if d.kind == CHANGED]
    assert [d.name for d in changed] == [gv.QKV]
    assert "q/k chunks swapped" in changed[0].detail
