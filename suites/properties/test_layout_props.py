"""Conv weight layouts: official <-> MLX round trips, and MLX convs loaded with our converted
weights against a numpy transcription of torch's conv1d / conv_transpose1d."""

from __future__ import annotations

from contextlib import contextmanager

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness.model import conv
from harness.model.config import TINY
from harness.model.layers import Conv1d, ConvTranspose1d
from harness.weights.convert import conv_modules, mlx_to_official, official_to_mlx
from harness.weights.safetensors_io import read_safetensors, write_safetensors
from suites.properties import mutants, oracles
from suites.properties.checks import EPS32, assert_close, assert_detects
from suites.properties.strategies import ConvCase, conv_cases, gaussian, seeds, weight_shapes

REAL = (official_to_mlx, mlx_to_official)
# A real module path of each kind: conversion dispatches on the module, not on the shape.
PATH = {kind: next(m for m, k in conv_modules(TINY).items() if k == kind) for kind in ("conv", "convT")}


def convert_one(convert, kind: str, w: np.ndarray, param: str = "weight") -> np.ndarray:
    key = f"{PATH[kind]}.{param}"
    return convert({key: w}, TINY)[key]


# -- per-tensor round trip ------------------------------------------------------------
def check_layout_roundtrip(pair, kind, shape, dtype, param, seed):
    to_mlx, to_official = pair
    w = gaussian(seed, shape, dtype=dtype)
    m = convert_one(to_mlx, kind, w, param)
    assert m.shape == oracles.mlx_shape(shape, kind), \
        f"{kind} {shape}: MLX shape {m.shape}, expected (out, k, in) {oracles.mlx_shape(shape, kind)}"
    assert m.dtype == w.dtype, f"{kind}: dtype changed {w.dtype} -> {m.dtype}"
    # A permutation is exact: compare bits, and against the named-axes oracle, so a
    # transpose that leaves a square shape unchanged still shows.
    assert np.array_equal(m, oracles.to_mlx_layout(w, kind)), f"{kind} {shape}: values misplaced"
    back = convert_one(to_official, kind, m, param)
    assert back.shape == w.shape and back.dtype == w.dtype and back.tobytes() == w.tobytes(), \
        f"{kind} {shape}: official -> MLX -> official is not bit-exact"


LAYOUT_EXAMPLES = [
    ("convT", (4, 4, 4), "float16", "weight_v", 0),  # the shipped bug: in == out == k
    ("convT", (8, 4, 16), "float16", "weight_v", 1),  # decoder block, stride 8
    ("conv", (3, 3, 3), "float32", "weight", 2),  # square conv
    ("conv", (8, 8, 1), "float32", "weight", 3),  # DiT 1x1
    ("convT", (5, 3, 2), "float32", "weight_g", 4),
]


@given(st.tuples(weight_shapes(), st.sampled_from(["float32", "float16"]),
                 st.sampled_from(["weight", "weight_v"]), seeds))
@example((("convT", (4, 4, 4)), "float16", "weight_v", 0))
@example((("convT", (8, 4, 16)), "float16", "weight_v", 1))
@example((("conv", (3, 3, 3)), "float32", "weight", 2))
def test_layout_roundtrip(args):
    (kind, shape), dtype, param, seed = args
    check_layout_roundtrip(REAL, kind, shape, dtype, param, seed)


@pytest.mark.parametrize("pair", [mutants.CONVT_AS_CONV, mutants.WRONG_INVERSE, mutants.NO_TRANSPOSE],
                         ids=lambda p: p[0].__name__)
def test_layout_roundtrip_catches(pair):
    assert_detects(check_layout_roundtrip, pair, LAYOUT_EXAMPLES)


# -- conv semantics ---------------------------------------------------------------------
def run_layer(to_mlx, case: ConvCase) -> np.ndarray:
    wm = convert_one(to_mlx, case.kind, case.w)
    want = oracles.mlx_shape(case.w.shape, case.kind)
    assert wm.shape == want, f"{case}: converted weight {wm.shape}, layer needs {want}"
    cls = Conv1d if case.kind == "conv" else ConvTranspose1d
    layer = cls(case.cin, case.cout, case.k, stride=case.stride, padding=case.padding,
                dilation=case.dilation, bias=case.bias)
    params = [("weight", mx.array(wm))] + ([("bias", mx.array(case.b))] if case.bias else [])
    layer.load_weights(params, strict=True)
    y = layer(mx.array(case.x.transpose(0, 2, 1)))  # MLX convs are channels-last
    return np.array(y).transpose(0, 2, 1)


def check_conv(to_mlx, case: ConvCase):
    y = run_layer(to_mlx, case)
    f = oracles.conv1d if case.kind == "conv" else oracles.conv_transpose1d
    args = (case.stride, case.padding, case.dilation)
    ref = f(case.x, case.w, case.b, *args)
    assert y.shape == (case.batch, case.cout, case.out_len), \
        f"{case}: output {y.shape}, torch gives {(case.batch, case.cout, case.out_len)}"
    # float32 dot products of n = cin*k terms: |err| <= (n+2)·eps·Σ|x·w| (+ bias rounding).
    scale = f(np.abs(case.x), np.abs(case.w), None if case.b is None else np.abs(case.b), *args)
    assert_close(f"{case}", y, ref, (case.cin * case.k + 2) * EPS32 * scale)


CONV_EXAMPLES = [
    ConvCase("conv", 3, 3, 3, 1, 1, 1, 9, seed=0),  # in == out == k: a transpose is invisible
    ConvCase("conv", 4, 4, 7, 1, 27, 9, 5, seed=1),  # residual unit, dilation 9
    ConvCase("conv", 4, 8, 4, 2, 1, 1, 10, seed=2),  # encoder downsampling, stride 2
    ConvCase("conv", 2, 5, 1, 1, 0, 1, 6, bias=False, seed=3),
]
CONVT_EXAMPLES = [
    ConvCase("convT", 4, 4, 4, 2, 1, 1, 6, seed=0),  # stride 2 block, in == out == k; per tap
    ConvCase("convT", 8, 4, 16, 8, 4, 1, 3, seed=1),  # stride 8 block; C_in > T: GEMM, then adds
    ConvCase("convT", 6, 6, 8, 4, 2, 1, 4, seed=2),  # square stride 4 block
    ConvCase("convT", 3, 5, 5, 3, 4, 2, 4, bias=False, seed=3),  # dilated
]


@contextmanager
def conv_layout(layout: str):
    """Route every stride-1 Conv1d through one GEMM layout of `conv.conv1d` (it picks by the
    output width, so the tiny shapes here would otherwise only ever take the per-tap one)."""
    saved = conv.TAPS_MAX_OUT_CHANNELS, conv.STACKED_MAX_WIDTH
    conv.TAPS_MAX_OUT_CHANNELS = {"taps": 1 << 30, "im2col": 0, "stacked": 0}[layout]
    conv.STACKED_MAX_WIDTH = 1e9 if layout == "stacked" else 0
    try:
        yield
    finally:
        conv.TAPS_MAX_OUT_CHANNELS, conv.STACKED_MAX_WIDTH = saved


@pytest.mark.parametrize("layout", ["taps", "im2col", "stacked"])
@given(case=conv_cases("conv"))
@example(case=CONV_EXAMPLES[0])
@example(case=CONV_EXAMPLES[1])
@example(case=CONV_EXAMPLES[2])
def test_conv1d_matches_torch(layout, case):
    with conv_layout(layout):
        check_conv(official_to_mlx, case)


@given(conv_cases("convT"))
@example(CONVT_EXAMPLES[0])
@example(CONVT_EXAMPLES[1])
@example(CONVT_EXAMPLES[2])
def test_conv_transpose1d_matches_torch(case):
    check_conv(official_to_mlx, case)


@pytest.mark.parametrize("convert,examples", [
    (mutants.NO_TRANSPOSE[0], CONV_EXAMPLES),
    (mutants.FLIPPED_KERNEL[0], CONV_EXAMPLES),
    (mutants.CONVT_AS_CONV[0], CONVT_EXAMPLES),
    (mutants.FLIPPED_KERNEL[0], CONVT_EXAMPLES),
], ids=["conv-no-transpose", "conv-flipped", "convT-as-conv", "convT-flipped"])
def test_conv_catches(convert, examples):
    assert_detects(check_conv, convert, [(c,) for c in examples])


def test_square_convT_as_conv_is_caught_by_values_not_shape():
    """The shipped bug: with in == out the wrong permutation gives the right shape."""
    case = CONVT_EXAMPLES[0]
    assert convert_one(mutants.CONVT_AS_CONV[0], "convT", case.w).shape == \
        oracles.mlx_shape(case.w.shape, "convT")
    with pytest.raises(AssertionError, match="got"):
        check_conv(mutants.CONVT_AS_CONV[0], case)


# -- the whole checkpoint -----------------------------------------------------------------
@pytest.fixture(scope="module")
def official(tiny_checkpoint):
    return read_safetensors(tiny_checkpoint / "model.safetensors")


def check_checkpoint_roundtrip(pair, official: dict, tmp_dir):
    to_mlx, to_official = pair
    kinds = conv_modules(TINY)
    mlx_w = to_mlx(official, TINY)
    assert mlx_w.keys() == official.keys(), "official_to_mlx changed the key set"
    for key, w in official.items():
        module, param = key.rsplit(".", 1)
        kind = kinds.get(module) if param in ("weight", "weight_v", "weight_g") else None
        want = oracles.to_mlx_layout(w, kind) if kind else w
        assert mlx_w[key].dtype == w.dtype and np.array_equal(mlx_w[key], want), \
            f"{key}: MLX tensor {mlx_w[key].shape} is not the {kind or 'untouched'} layout of {w.shape}"
    back = to_official(mlx_w, TINY)
    for name, tensors in (("in memory", back), ("through a file", None)):
        if tensors is None:
            write_safetensors(tmp_dir / "roundtrip.safetensors", back)
            tensors = read_safetensors(tmp_dir / "roundtrip.safetensors")
        assert tensors.keys() == official.keys(), f"{name}: key set changed"
        for key, w in official.items():
            got = tensors[key]
            assert got.dtype == w.dtype and got.shape == w.shape and got.tobytes() == w.tobytes(), \
                f"{name}: {key} not bit-exact after official -> MLX -> official"


def test_checkpoint_roundtrip_bit_exact(official, tmp_path):
    assert any(k in ("conv", "convT") for k in conv_modules(TINY).values())
    check_checkpoint_roundtrip(REAL, official, tmp_path)


@pytest.mark.parametrize("pair", [mutants.CONVT_AS_CONV, mutants.WRONG_INVERSE],
                         ids=lambda p: p[0].__name__)
def test_checkpoint_roundtrip_catches(pair, official, tmp_path):
    # CONVT_AS_CONV round-trips perfectly (its permutation is an involution): only the
    # layout half of the property can see it.
    assert_detects(check_checkpoint_roundtrip, pair, [(official, tmp_path)])
