"""Tensor classification and fault diagnosis of harness.compare.weightdiff, on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from harness.compare.weightdiff import (CHANGED, IDENTICAL, REPARAM, ROUNDED, classify, diff_weights,
                                     round_to)
from harness.weights.convert import fuse_pair

rng = np.random.default_rng(0)
W = rng.standard_normal((12, 12)).astype(np.float32)


def test_widening_is_identical_and_rounding_is_rounded():
    w16 = W.astype(np.float16).astype(np.float32)
    assert classify("x", w16, "F32", w16, "F16").kind == IDENTICAL
    assert classify("x", w16, "F16", W, "F32").kind == ROUNDED       # fp32 -> fp16
    assert classify("x", W, "F32", w16, "F16").kind == ROUNDED       # the fp32 original
    assert classify("x", round_to(W, "BF16"), "BF16", W, "F32").rounding == "BF16"
    # F32 storage gets no rounding allowance: one ulp is a change.
    assert classify("x", np.nextafter(W, np.inf), "F32", W, "F32").kind == CHANGED
    # an fp16 tensor one fp16 ulp off is not a rounding of the original
    off = np.nextafter(W.astype(np.float16), np.float16(np.inf)).astype(np.float32)
    assert classify("x", off, "F16", W, "F32").kind == CHANGED


@pytest.mark.parametrize("name,edit,needle", [
    ("a.to_out.weight", lambda w: w.T.copy(), "transposed"),
    ("a.to_qkv.weight", lambda w: np.concatenate([w[4:8], w[:4], w[8:]]),
     "q/k chunks swapped along dim 0 (candidate order k|q|v"),
    ("a.to_kv.weight", lambda w: np.concatenate([w[6:], w[:6]]), "k/v chunks swapped"),
    ("a.proj.weight", lambda w: np.concatenate([w[6:], w[:6]]), "value/gate chunks swapped"),
    ("a.weight", lambda w: 0.5 * w, "scaled by 0.5"),
    ("a.weight", lambda w: rng.standard_normal(w.shape).astype(np.float32),
     "replaced by unrelated values"),
])
def test_diagnosis(name, edit, needle):
    d = classify(name, edit(W), "F32", W, "F32")
    assert d.kind == CHANGED and needle in d.detail, d.detail


def test_diagnosis_survives_fp16_rounding():
    d = classify("a.to_out.weight", W.T.astype(np.float16).astype(np.float32), "F16", W, "F32")
    assert "transposed" in d.detail


def _pair(g, v):
    return {"m.weight_g": g, "m.weight_v": v}


def test_weight_norm_reparameterization_and_wrong_dim():
    v = rng.standard_normal((6, 6, 4)).astype(np.float32)   # ConvTranspose1d (in, out, k)
    g = (1 + 0.2 * rng.standard_normal((6, 1, 1))).astype(np.float32)
    w = fuse_pair(g, v)
    dt = {"m.weight_g": "F32", "m.weight_v": "F32"}
    right = _pair(np.sqrt((w.astype(np.float64) ** 2).sum(axis=(1, 2), keepdims=True))
                  .astype(np.float32), w)
    kinds = {d.name: d.kind for d in diff_weights(right, dt, _pair(g, v), dt)}
    assert kinds == {"m.weight_g": REPARAM, "m.weight_v": REPARAM}
    wrong = _pair(np.sqrt((w.astype(np.float64) ** 2).sum(axis=(0, 2))).reshape(6, 1, 1)
                  .astype(np.float32), w)
    diffs = {d.name: d for d in diff_weights(wrong, dt, _pair(g, v), dt)}
    assert diffs["m.weight_g"].kind == CHANGED
    assert "norm of weight_v per dim 1" in diffs["m.weight_g"].detail
