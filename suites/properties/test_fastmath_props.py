"""The polynomial transcendentals and the CPU-stream split behind the model's speed work
(`harness.model.fastmath`) against float64 numpy: each must stay at float32 rounding, so a
faster kernel can never be what moves a golden."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.model import fastmath
from suites.properties import oracles
from suites.properties.checks import EPS32

TINY32 = float(np.finfo(np.float32).tiny)
F32_FINITE = st.floats(-1e4, 1e4, width=32, allow_nan=False)


def _np(a) -> np.ndarray:
    return np.array(a).astype(np.float64)


def test_exp_whole_range_at_float32_rounding():
    x = np.linspace(-87, 88, 2_000_001, dtype=np.float32)
    got, ref = _np(fastmath.exp(mx.array(x))), np.exp(x.astype(np.float64))
    rel = np.max(np.abs(got - ref) / ref)
    assert rel < 2 * EPS32, f"exp: max relative error {rel:.3g} > 2 eps"
    # Out of range inputs clamp (softmax and SiLU only need exp(-large) ~ 0 and no inf).
    edge = _np(fastmath.exp(mx.array(np.array([-1e4, -90.0, 89.0, 1e4], np.float32))))
    assert np.all(np.isfinite(edge)) and edge[0] < 1e-37 and edge[1] < 1e-37, edge


@given(arrays(np.float32, st.integers(1, 300), elements=F32_FINITE))
def test_silu_and_gate_match_float64(x):
    ref = x.astype(np.float64) * oracles.expit(x.astype(np.float64))
    # Below x = -87 exp(-x) is clamped, so both exact and computed |silu| are < |x| e^-87;
    # under float32's smallest normal (subnormal inputs) relative precision ends.
    floor = np.abs(x.astype(np.float64)) * np.exp(-87.0) + TINY32
    tol = 4 * EPS32 * np.abs(ref) + floor
    got = _np(fastmath.silu(mx.array(x)))
    assert np.all(np.abs(got - ref) <= tol), f"silu: worst {np.max(np.abs(got - ref) / tol):.3g} x tol"
    value = np.flip(x).copy()
    gated = _np(fastmath.gated_silu(mx.array(value), mx.array(x)))
    ref_g = value.astype(np.float64) * ref
    tol_g = 5 * EPS32 * np.abs(ref_g) + np.abs(value.astype(np.float64)) * floor + TINY32
    assert np.all(np.abs(gated - ref_g) <= tol_g), "gated_silu"


@settings(max_examples=40)
@given(arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 70)),
              elements=st.floats(-60, 60, width=32)))
def test_softmax_matches_float64(s):
    got = _np(fastmath.softmax(mx.array(s)))
    ref = oracles.softmax(s.astype(np.float64))
    # The shift s - max rounds by |s - max| eps/2 absolute, which exp turns into as much
    # relative error; then each exp by ~2 eps and the sum of n terms by ~n eps relative.
    shift = np.abs(s.astype(np.float64) - s.max(axis=-1, keepdims=True))
    tol = (s.shape[-1] + 4 + shift) * EPS32 * ref + 1e-30
    assert np.all(np.abs(got - ref) <= tol), f"softmax: worst {np.max(np.abs(got - ref) / tol):.3g} x tol"


def test_kernels_cut_by_hand_equal_the_whole_polynomial():
    """The GLU gate and the softmax run exp_poly's operations cut into kernels by hand: the
    same operations in the same order, so the same bits as exp_poly traced whole, at the ends
    of its clamp, beyond them, and on inf and NaN."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-100, 100, 20001), [-87, 88, np.inf, -np.inf, np.nan],
                        rng.standard_normal(4994) * 30]).astype(np.float32).reshape(2, 50, 250)
    x, v = mx.array(x), mx.array(np.flip(x).copy())
    whole_gate = mx.compile(lambda v, g: v * (g / (1.0 + fastmath.exp_poly(-g))))
    assert np.array_equal(np.array(fastmath.gated_silu(v, x)), np.array(whole_gate(v, x)),
                          equal_nan=True)
    s = mx.where(mx.isnan(x), 0.0, x)  # rows with inf are NaN after the max shift
    whole_exp = mx.compile(lambda s, m: fastmath.exp_poly(s - m))
    e = whole_exp(s, mx.max(s, axis=-1, keepdims=True))
    assert np.array_equal(np.array(fastmath.softmax(s)),
                          np.array(e / mx.sum(e, axis=-1, keepdims=True)), equal_nan=True)


def test_round_is_rint_ties_to_even():
    """The add-and-subtract rounding that the range reductions use, against numpy's rint,
    on halves (ties), their neighbours and the ends of its exact range (+-2^22)."""
    k = np.arange(-5000, 5000, dtype=np.float32)
    v = np.concatenate([k, k + 0.5, np.nextafter(k + 0.5, np.float32(np.inf)),
                        np.nextafter(k + 0.5, np.float32(-np.inf)),
                        np.float32([2**22, -2**22, 2**22 - 0.5, -(2**22 - 0.5), 0.49999997])])
    got = _np(mx.compile(fastmath._round)(mx.array(v)))
    assert np.array_equal(got, np.rint(v)), f"{v[got != np.rint(v)][:5]}"


def test_sin_squared_at_float32_rounding():
    u = np.linspace(-300, 300, 2_000_001, dtype=np.float32)
    err = np.max(np.abs(_np(mx.compile(fastmath.sin_squared)(mx.array(u)))
                        - np.sin(u.astype(np.float64)) ** 2))
    assert err < 4e-7, f"sin^2: max abs error {err:.3g}"


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_half_precision_inputs_reduce_in_float32(dtype):
    """The rounding constant 1.5 * 2^23 is inf in float16 (and not exact in bfloat16), so the
    range reductions run in float32 and round back: a half-precision decoder (the
    fp16-vae-overflow mutant) gets half-precision rounding, not NaN from inf - inf."""
    x = mx.array(np.linspace(-9, 9, 1001, dtype=np.float32)).astype(dtype)
    x32 = x.astype(mx.float32)
    _np = lambda a: np.array(a.astype(mx.float32)).astype(np.float64)  # numpy has no bfloat16
    for f in (fastmath.sin_squared, fastmath.exp):  # the float32 result, rounded once
        got = f(x)
        assert got.dtype == dtype and np.array_equal(_np(got), _np(f(x32).astype(dtype))), f
    one = mx.ones((1,), dtype=dtype)
    snake = fastmath.snake(x[None, :, None], one, one)[0, :, 0]
    for got, want in [(fastmath.silu(x), fastmath.silu(x32)),
                      (snake, x32 + fastmath.sin_squared(x32))]:
        err = np.abs(_np(got) - _np(want)) / (np.abs(_np(want)) + 1)  # a few half ulps
        assert got.dtype == dtype and np.isfinite(_np(got)).all(), got.dtype
        assert err.max() < 2 ** -6, err.max()


def test_cpu_stream_split_is_bit_identical():
    rng = np.random.default_rng(0)
    x = mx.array(rng.standard_normal((2, 3001, 400), dtype=np.float32))  # > PARALLEL_MIN
    alpha = mx.array(rng.uniform(0.5, 3, 400).astype(np.float32))
    inv_beta = mx.array(rng.uniform(0.5, 2, 400).astype(np.float32))
    assert x.size >= fastmath.PARALLEL_MIN_ELEMENTS
    split = np.array(fastmath.snake(x, alpha, inv_beta))
    whole = np.array(fastmath._snake(x, alpha, inv_beta))
    assert split.shape == whole.shape and np.array_equal(split, whole), "stream split changed values"


def test_cpu_stream_split_works_from_any_thread():
    # MLX streams are per thread; the gate runs model stages in worker threads.
    from concurrent.futures import ThreadPoolExecutor

    x = mx.array(np.linspace(-3, 3, 2 * 1100 * 1000, dtype=np.float32).reshape(2, 1100, 1000))
    one = mx.ones((1000,))
    whole = np.array(fastmath._snake(x, one, one))
    snake_once = lambda: np.array(fastmath.snake(x, one, one))
    with ThreadPoolExecutor(2) as pool:
        for got in [snake_once()] + list(pool.map(lambda _: snake_once(), range(3))):
            assert np.array_equal(got, whole)


def test_kept_snake_inputs_change_no_value():
    """`keep_snake_inputs` only holds references (so MLX cannot run the snake kernels in
    place): the snake's input and intermediate are held inside, dropped after, values equal."""
    rng = np.random.default_rng(1)
    x = mx.array(rng.standard_normal((1, 700, 48), dtype=np.float32) * 4)
    alpha = mx.array(rng.uniform(0.5, 20, 48).astype(np.float32))
    inv_beta = mx.array(rng.uniform(0.5, 2, 48).astype(np.float32))
    free = np.array(fastmath.snake(x * 1, alpha, inv_beta))  # x * 1: an input MLX may donate
    with fastmath.keep_snake_inputs():
        y = fastmath.snake(x * 1, alpha, inv_beta)
        kept = list(fastmath._local.kept)
        mx.eval(y)
    assert len(kept) == 2 and kept[0].shape == kept[1].shape == x.shape
    assert getattr(fastmath._local, "kept", None) is None
    assert np.array_equal(np.array(y), free)
