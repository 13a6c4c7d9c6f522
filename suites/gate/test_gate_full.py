"""The gate on full-size checkpoints: an fp16 re-encode of the real-size DiT is accepted
(its drift is what drift_tolerances.toml was calibrated on), and the tensor diff names a
q/k swap in a real-size fused projection."""

from __future__ import annotations

import numpy as np
import pytest

from harness.compare.weightdiff import CHANGED, classify
from suites.gate import gate_variants as gv

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


def test_full_qk_swap_named(full_checkpoint):
    """The diagnosis on a real-size fused projection (3072 x 1024), read from the file."""
    from safetensors import safe_open

    with safe_open(str(full_checkpoint / "model.safetensors"), "np") as f:
        qkv = f.get_tensor(gv.QKV)
    q, k, v = np.split(qkv, 3)
    d = classify(gv.QKV, np.concatenate([k, q, v]), "F32", qkv, "F32")
    assert d.kind == CHANGED and "q/k chunks swapped" in d.detail, d.detail
