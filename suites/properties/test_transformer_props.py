"""DiT pieces against numpy oracles: partial half-split RoPE, Attention (qk LayerNorm before
RoPE, '(h d)' heads), GLU (value | gate), LayerNorm (gamma, beta, eps 1e-5)."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import example, given

from harness.model.dit import GLU, Attention, RotaryEmbedding, apply_rotary
from harness.model.layers import LayerNorm
from suites.properties import mutants, oracles
from suites.properties.checks import EPS32, assert_close, assert_detects
from suites.properties.strategies import (AttentionCase, DenseCase, NormCase, RelPosCase, RopeCase,
                                          attention_cases, glu_cases, layer_norm_cases,
                                          relpos_cases, rope_cases)


# -- RoPE ------------------------------------------------------------------------------------
def rope(x: np.ndarray, rot: int) -> np.ndarray:
    """The port: apply_rotary with RotaryEmbedding(rot) tables at positions 0..T-1."""
    cos, sin = RotaryEmbedding(rot).freqs(x.shape[-2])
    return np.array(apply_rotary(mx.array(x), cos, sin))


def rope_tol(x: np.ndarray, rot: int) -> np.ndarray:
    # float32 angles pos·inv_freq carry up to ~T·eps rad (inv_freq itself may differ by an
    # ulp between libraries); each output mixes |x_i| and |x_partner|.
    T = x.shape[-2]
    mag = np.abs(x).astype(np.float64)
    mag[..., :rot] += np.abs(oracles.rotate_half(x[..., :rot]))
    return (2 * T + 4) * EPS32 * mag


def check_rope_layout(rope_fn, case: RopeCase):
    """Equals the half-split oracle: rotate_half(x) = cat(-x2, x1) on halves of the rotated dims."""
    y = rope_fn(case.x, case.rot)
    assert_close(f"{case}", y, oracles.apply_rope(case.x, case.rot), rope_tol(case.x, case.rot))


def check_rope_norm(rope_fn, case: RopeCase):
    y = rope_fn(case.x, case.rot).astype(np.float64)
    n_x = np.linalg.norm(case.x.astype(np.float64), axis=-1)
    # cos² + sin² = 1 up to the rounding of cos, sin and the products: a few eps, at any angle.
    assert_close(f"{case}: |rope(x)|", np.linalg.norm(y, axis=-1), n_x, 4 * EPS32 * n_x)


def check_rope_untouched(rope_fn, case: RopeCase):
    """Head dims past `rot` pass bit-exactly; position 0 is rotated by angle 0 (identity)."""
    y = rope_fn(case.x, case.rot)
    assert np.array_equal(y[..., case.rot:], case.x[..., case.rot:]), \
        f"{case}: un-rotated dims {case.rot}..{case.dim_heads} changed"
    assert_close(f"{case}: position 0", y[..., 0, :], case.x[..., 0, :], EPS32 * np.abs(case.x[..., 0, :]))


def check_rope_relative(rope_fn, case: RelPosCase):
    """q·k after RoPE depends only on the position difference m - n."""
    def score(m, n):
        T = max(m, n) + 1
        Q = np.zeros((1, 1, T, case.dim_heads), np.float32)
        K = np.zeros_like(Q)
        Q[0, 0, m], K[0, 0, n] = case.q, case.k
        return float(np.dot(rope_fn(Q, case.rot)[0, 0, m].astype(np.float64),
                            rope_fn(K, case.rot)[0, 0, n].astype(np.float64)))

    s0, s1 = score(case.m, case.n), score(case.m + case.shift, case.n + case.shift)
    bound = np.linalg.norm(case.q) * np.linalg.norm(case.k)
    top = max(case.m, case.n) + case.shift
    # float32 angles pos·inv_freq round by <= pos·eps/2 rad, on q and on k, in both scores;
    # plus the dot product's own rounding.
    assert_close(f"{case}: q·k at ({case.m},{case.n}) vs shifted", s1, s0,
                 (2 * top + 8) * EPS32 * bound)


ROPE_EXAMPLES = [
    RopeCase(1, 2, 257, 128, 64, seed=0),  # full model: 256 frames + global token, rot 64 of 128
    RopeCase(1, 2, 33, 64, 32, seed=1),  # tiny model: rot 32 of 64
    RopeCase(2, 1, 5, 8, 8, seed=2),  # every head dim rotated
    RopeCase(1, 1, 6, 12, 4, seed=3),
]
RELPOS_EXAMPLES = [RelPosCase(128, 64, 3, 10, 100, seed=0), RelPosCase(8, 4, 0, 5, 7, seed=1),
                   RelPosCase(64, 32, 20, 2, 1, seed=2)]


@given(rope_cases())
@example(ROPE_EXAMPLES[0])
@example(ROPE_EXAMPLES[1])
def test_rope_half_split_layout(case):
    check_rope_layout(rope, case)


@given(rope_cases())
@example(ROPE_EXAMPLES[0])
def test_rope_preserves_norms(case):
    check_rope_norm(rope, case)


@given(rope_cases())
@example(ROPE_EXAMPLES[0])
def test_rope_unrotated_dims_untouched(case):
    check_rope_untouched(rope, case)


@given(relpos_cases())
@example(RELPOS_EXAMPLES[0])
def test_rope_relative_positions(case):
    check_rope_relative(rope, case)


@pytest.mark.parametrize("check,wrong,examples", [
    (check_rope_layout, mutants.rope_interleaved, ROPE_EXAMPLES),
    (check_rope_norm, mutants.rope_unnegated, ROPE_EXAMPLES),
    (check_rope_untouched, mutants.rope_full_head, ROPE_EXAMPLES),
    (check_rope_relative, mutants.rope_sin_off_by_one, RELPOS_EXAMPLES),
    (check_rope_relative, mutants.rope_unnegated, RELPOS_EXAMPLES),
], ids=["layout-interleaved", "norm-unnegated", "untouched-full-head", "relative-sin-shifted",
        "relative-unnegated"])
def test_rope_catches(check, wrong, examples):
    assert_detects(check, wrong, [(c,) for c in examples])


def test_interleaved_rope_passes_the_invariants():
    """Why the layout oracle is needed: interleaved pairs are also a norm-preserving,
    relative-position rotation; only the comparison with the half-split oracle sees them."""
    for case in ROPE_EXAMPLES:
        check_rope_norm(mutants.rope_interleaved, case)
        check_rope_untouched(mutants.rope_interleaved, case)
    for case in RELPOS_EXAMPLES:
        check_rope_relative(mutants.rope_interleaved, case)


# -- Attention ---------------------------------------------------------------------------------
def check_attention(cls, case: AttentionCase):
    cross = case.context_tokens > 0
    attn = cls(case.dim, case.dim_heads, dim_context=case.context_dim if cross else None)
    attn.load_weights([(k, mx.array(v)) for k, v in case.params.items()], strict=True)
    if cross:  # cross-attention has no RoPE
        y = np.array(attn(mx.array(case.x), context=mx.array(case.context)))
    else:
        y = np.array(attn(mx.array(case.x), rotary=RotaryEmbedding(case.rot).freqs(case.tokens)))
    ref = oracles.attention(case.params, case.x, case.heads, case.context,
                            None if cross else oracles.rope_tables(case.tokens, case.rot))
    # float32 through ~6 stages (projections, LayerNorm, RoPE, softmax, mix, out) of sums of
    # <= 48 O(1) terms: 64·eps relative to the output scale covers the accumulated rounding.
    assert_close(f"{case}", y, ref, 64 * EPS32 * (np.abs(ref) + 1))


ATTN_EXAMPLES = [
    AttentionCase(2, 16, 9, 0, 0, 8, seed=0),  # self-attention, partial RoPE
    AttentionCase(2, 16, 7, 5, 12, 8, seed=1),  # cross-attention, context of another width
    AttentionCase(4, 8, 6, 0, 0, 8, batch=2, seed=2),
]


@given(attention_cases())
@example(ATTN_EXAMPLES[0])
@example(ATTN_EXAMPLES[1])
def test_attention(case):
    check_attention(Attention, case)


@pytest.mark.parametrize("cls", [mutants.AttentionHeadsDH, mutants.AttentionNormAfterRope,
                                 mutants.AttentionModelDimScale], ids=lambda c: c.__name__)
def test_attention_catches(cls):
    assert_detects(check_attention, cls, [(c,) for c in ATTN_EXAMPLES])


# -- GLU ------------------------------------------------------------------------------------------
def check_glu(cls, case: DenseCase):
    inner = case.dim_out // 2
    glu = cls(case.dim_in, inner)
    glu.load_weights([("proj.weight", mx.array(case.w)), ("proj.bias", mx.array(case.b))], strict=True)
    y = np.array(glu(mx.array(case.x)))
    ref = oracles.glu(case.x, case.w, case.b)
    h = oracles.linear(case.x, case.w, case.b)
    h_err = (case.dim_in + 2) * EPS32 * oracles.linear(np.abs(case.x), np.abs(case.w), np.abs(case.b))
    value, gate = h[..., :inner], h[..., inner:]
    # linear rounding (n+2)·eps·Σ|terms| propagated through value·silu(gate) (|silu'| < 1.1),
    # plus the silu and product roundings.
    tol = (h_err[..., :inner] * np.abs(oracles.silu(gate)) + 1.1 * np.abs(value) * h_err[..., inner:]
           + 4 * EPS32 * np.abs(ref))
    assert_close(f"{case}", y, ref, tol)


GLU_EXAMPLES = [DenseCase(8, 16, seed=0, scale=2.0), DenseCase(3, 2, seed=1, scale=2.0),
                DenseCase(32, 64, tokens=2, seed=2, scale=2.0)]


@given(glu_cases())
@example(GLU_EXAMPLES[0])
def test_glu_value_then_gate(case):
    check_glu(GLU, case)


@pytest.mark.parametrize("cls", [mutants.GLUSwapped, mutants.GLUSigmoid], ids=lambda c: c.__name__)
def test_glu_catches(cls):
    assert_detects(check_glu, cls, [(c,) for c in GLU_EXAMPLES])


# -- LayerNorm --------------------------------------------------------------------------------------
def check_layer_norm(cls, case: NormCase):
    ln = cls(case.dim)
    ln.load_weights([("gamma", mx.array(case.gamma)), ("beta", mx.array(case.beta))], strict=True)
    y = np.array(ln(mx.array(case.x)))
    ref = oracles.layer_norm(case.x, case.gamma, case.beta, 1e-5)
    x = case.x.astype(np.float64)
    sigma = np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    # float32 mean/variance of n terms err by <= (n+8)·eps·max|x|; dividing by sigma turns
    # that into the output's absolute error (cancellation when |mean| >> sigma is real).
    tol = ((case.dim + 8) * EPS32 * np.abs(x).max(-1, keepdims=True) / sigma * np.abs(case.gamma)
           + 2 * EPS32 * np.abs(ref))
    assert_close(f"{case}", y, ref, tol)


LN_EXAMPLES = [NormCase(16, offset=3.0, seed=0), NormCase(4, offset=0.0, seed=1),
               NormCase(64, offset=-20.0, scale=30.0, seed=2)]


@given(layer_norm_cases())
@example(LN_EXAMPLES[0])
def test_layer_norm(case):
    check_layer_norm(LayerNorm, case)


@pytest.mark.parametrize("cls", [mutants.LayerNormRMS, mutants.LayerNormUnbiased],
                         ids=lambda c: c.__name__)
def test_layer_norm_catches(cls):
    assert_detects(check_layer_norm, cls, [(c,) for c in LN_EXAMPLES])
