"""Weight-norm fusion: w = g·v/‖v‖ per dim 0 of the STORED tensor (conv: output channel,
conv-transpose: input channel), checked after the official -> MLX re-layout, as the loader
does it."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from mlx.utils import tree_flatten

from harness.model.config import TINY
from harness.model.layers import ConvTranspose1d
from harness.weights.convert import conv_modules, fuse_pair, official_to_mlx
from harness.weights.load import load_model
from harness.weights.safetensors_io import read_safetensors
from suites.properties import mutants, oracles
from suites.properties.checks import EPS32, assert_close, assert_detects
from suites.properties.strategies import WeightNormCase, gaussian, weight_norm_pairs

PATH = {kind: next(m for m, k in conv_modules(TINY).items() if k == kind) for kind in ("conv", "convT")}


def stored_to_mlx(case: WeightNormCase) -> tuple[np.ndarray, np.ndarray]:
    """(g, v) through the real official -> MLX conversion, keys as in the checkpoint."""
    m = PATH[case.kind]
    out = official_to_mlx({f"{m}.weight_g": case.g, f"{m}.weight_v": case.v}, TINY)
    return out[f"{m}.weight_g"], out[f"{m}.weight_v"]


def fusion_tol(case: WeightNormCase, magnitude) -> np.ndarray:
    # float32: ‖v‖ sums n = n1·k squares (relative error <= (n/2+1)·eps), then a sqrt, a
    # divide and a multiply, each half an ulp: (n + 4)·eps relative to the element.
    n = case.shape[1] * case.shape[2]
    return (n + 4) * EPS32 * np.abs(magnitude)


def check_fusion_formula(fuse, case: WeightNormCase):
    g, v = stored_to_mlx(case)
    w = np.asarray(fuse(g, v))
    ref = oracles.to_mlx_layout(oracles.weight_norm(case.g, case.v), case.kind)
    assert w.dtype == np.float32, f"{case}: fused dtype {w.dtype}, expected float32"
    assert_close(f"{case}: fused weight (MLX layout)", w, ref, fusion_tol(case, ref))


def check_fusion_norms(fuse, case: WeightNormCase):
    """‖w_i‖ over the stored tensor's other dims equals |g_i|."""
    g, v = stored_to_mlx(case)
    w = oracles.to_torch_layout(np.asarray(fuse(g, v), np.float64), case.kind)
    norms = np.sqrt((w * w).reshape(w.shape[0], -1).sum(1))
    g_abs = np.abs(case.g.astype(np.float64).reshape(-1))
    assert_close(f"{case}: per-dim-0 norms of w", norms, g_abs, fusion_tol(case, g_abs))


def check_fusion_scale_invariance(fuse, case: WeightNormCase, c: float):
    """fuse(g, c·v) == fuse(g, v) for c > 0 (scaling v is done in float32, where it rounds)."""
    g, v = stored_to_mlx(case)
    w1 = np.asarray(fuse(g, v))
    w2 = np.asarray(fuse(g, (v.astype(np.float32) * np.float32(c))))
    # both rounding budgets plus the rounding of c·v itself (one ulp per element).
    assert_close(f"{case}: fuse(g, {c:g}·v)", w2, w1, 2 * fusion_tol(case, w1) + 2 * EPS32 * np.abs(w1))


WN_EXAMPLES = [
    WeightNormCase("convT", (4, 4, 4), "float16", seed=0),  # the shipped bug: in == out
    WeightNormCase("convT", (8, 4, 16), "float16", seed=1),  # decoder block, stride 8
    WeightNormCase("convT", (3, 5, 2), "float32", seed=2),
    WeightNormCase("conv", (6, 6, 7), "float16", seed=3),  # residual unit conv
    WeightNormCase("conv", (2, 8, 1), "float32", seed=4),  # 1x1 conv
]


@given(weight_norm_pairs())
@example(WN_EXAMPLES[0])
@example(WN_EXAMPLES[1])
def test_fusion_formula(case):
    check_fusion_formula(fuse_pair, case)


@given(weight_norm_pairs())
@example(WN_EXAMPLES[0])
def test_fusion_norms_equal_abs_g(case):
    check_fusion_norms(fuse_pair, case)


@given(weight_norm_pairs(), st.floats(1e-3, 1e3))
@example(WN_EXAMPLES[0], 0.001)
def test_fusion_scale_invariant(case, c):
    check_fusion_scale_invariance(fuse_pair, case, c)


@pytest.mark.parametrize("check,fuse", [
    (check_fusion_formula, mutants.fuse_per_mlx_dim0),  # wrong-dim fusion
    (check_fusion_formula, mutants.fuse_l1),
    (check_fusion_norms, mutants.fuse_per_mlx_dim0),
    (check_fusion_norms, mutants.fuse_l1),
], ids=["formula-wrong-dim", "formula-l1", "norms-wrong-dim", "norms-l1"])
def test_fusion_catches(check, fuse):
    assert_detects(check, fuse, [(c,) for c in WN_EXAMPLES])


def test_scale_invariance_catches_unnormalized():
    assert_detects(check_fusion_scale_invariance, mutants.fuse_unnormalized,
                   [(c, 4.0) for c in WN_EXAMPLES])


def test_wrong_dim_is_right_for_conv_only():
    """The per-output-channel norm is correct for a conv: the bug hides unless a
    conv-transpose is tested."""
    for case in WN_EXAMPLES:
        if case.kind == "conv":
            check_fusion_formula(mutants.fuse_per_mlx_dim0, case)
        else:
            with pytest.raises(AssertionError):
                check_fusion_formula(mutants.fuse_per_mlx_dim0, case)


# -- the loader on the tiny checkpoint ------------------------------------------------------
@pytest.fixture(scope="module")
def official(tiny_checkpoint):
    return read_safetensors(tiny_checkpoint / "model.safetensors")


@pytest.fixture(scope="module")
def loaded(tiny_model):
    """MLX-layout weights as the loader put them into the model."""
    return {k: np.array(v) for k, v in tree_flatten(tiny_model.parameters())}


def check_loaded_fusion(weights: dict, official: dict):
    kinds = conv_modules(TINY)
    modules = [k[: -len(".weight_g")] for k in official if k.endswith(".weight_g")]
    assert modules, "no weight-normed tensors in the checkpoint"
    for m in modules:
        assert f"{m}.weight_g" not in weights and f"{m}.weight_v" not in weights, f"{m}: unfused"
        kind = kinds[m]
        g, v = official[f"{m}.weight_g"], official[f"{m}.weight_v"]
        ref = oracles.to_mlx_layout(oracles.weight_norm(g, v), kind)
        case = WeightNormCase(kind, v.shape)  # only for the tolerance and the message
        # the model holds float32 (load_model's compute dtype)
        assert_close(f"{m} ({kind} {v.shape})", weights[f"{m}.weight"], ref, fusion_tol(case, ref))


def test_loader_fuses_per_stored_dim0(loaded, official):
    assert any(k == "convT" for k in conv_modules(TINY).values())
    check_loaded_fusion(loaded, official)


def test_loader_fusion_catches_wrong_dim(official):
    m = official_to_mlx(official, TINY)
    wrong = {}
    for key in m:
        if key.endswith(".weight_v"):
            mod = key[: -len(".weight_v")]
            wrong[f"{mod}.weight"] = mutants.fuse_per_mlx_dim0(m[f"{mod}.weight_g"], m[key])
    assert_detects(check_loaded_fusion, wrong, [(official,)])


def check_loaded_conv_transposes(model, official: dict):
    """End to end: each weight-normed conv-transpose of a loaded tiny VAE, run in MLX, equals
    torch's conv_transpose1d with w = weight_norm(g, v) from the official file."""
    kinds = conv_modules(TINY)
    seen = 0
    for name, layer in model.named_modules():
        if kinds.get(name) != "convT":
            continue
        g, v = official[f"{name}.weight_g"], official[f"{name}.weight_v"]
        cin, cout, k = v.shape
        x = gaussian(seen, (1, cin, 5))
        y = np.array(layer(mx.array(x.transpose(0, 2, 1)))).transpose(0, 2, 1)
        w = oracles.weight_norm(g, v)
        b = official[f"{name}.bias"]
        ref = oracles.conv_transpose1d(x, w, b, layer.stride, layer.padding, layer.dilation)
        scale = oracles.conv_transpose1d(np.abs(x), np.abs(w), np.abs(b), layer.stride,
                                         layer.padding, layer.dilation)
        # float32 dot products of cin·k terms, on weights carrying the fusion's (cout·k + 4)·eps.
        assert_close(name, y, ref, (cin * k + 2 + cout * k + 4) * EPS32 * scale)
        assert isinstance(layer, ConvTranspose1d)
        seen += 1
    assert seen == len(TINY.vae.strides), f"found {seen} conv-transposes"


def test_loaded_conv_transposes_match_torch(tiny_model, official):
    check_loaded_conv_transposes(tiny_model, official)


def test_loaded_conv_transposes_catch_wrong_dim_fusion(tiny_checkpoint, official):
    model, _ = load_model(tiny_checkpoint)  # a private copy: its weights get broken below
    m = official_to_mlx(official, TINY)
    wrong = [(f"{mod}.weight", mx.array(mutants.fuse_per_mlx_dim0(m[f"{mod}.weight_g"], m[f"{mod}.weight_v"])))
             for mod, kind in conv_modules(TINY).items() if kind == "convT"]
    model.load_weights(wrong, strict=False)
    assert_detects(check_loaded_conv_transposes, model, [(official,)])
