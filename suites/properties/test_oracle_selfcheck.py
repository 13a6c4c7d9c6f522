"""The oracles themselves, checked against other formulations (scipy, adjoints, complex
rotations), so a property cannot pass because port and oracle share a mistake."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given
from scipy.signal import correlate

from suites.properties import oracles
from suites.properties.checks import assert_close
from suites.properties.strategies import ConvCase, RopeCase, conv_cases, rope_cases, weight_norm_pairs


F64_TOL = 1e-12  # float64 sums of O(1) terms: any formulation agrees to ~1e-14


@given(conv_cases("conv"))
@example(ConvCase("conv", 4, 4, 7, 1, 27, 9, 5, seed=1))
def test_conv_oracle_is_scipy_correlation(case):
    """torch conv1d = per-channel scipy cross-correlation of the zero-padded input with the
    dilated kernel, sampled every `stride`."""
    c = case
    xp = np.pad(c.x.astype(np.float64), ((0, 0), (0, 0), (c.padding, c.padding)))
    kern = np.zeros((c.cout, c.cin, c.dilation * (c.k - 1) + 1))
    kern[:, :, :: c.dilation] = c.w
    dense = np.array([[sum(correlate(xp[b, i], kern[o, i], mode="valid") for i in range(c.cin))
                       for o in range(c.cout)] for b in range(c.batch)])
    want = dense[:, :, :: c.stride][:, :, : c.out_len]
    if c.b is not None:
        want = want + c.b[None, :, None]
    assert want.shape[-1] == c.out_len
    assert_close(f"{case}", oracles.conv1d(c.x, c.w, c.b, c.stride, c.padding, c.dilation), want, F64_TOL)


@given(conv_cases("convT"))
@example(ConvCase("convT", 4, 4, 4, 2, 1, 1, 6, seed=0))
def test_conv_transpose_oracle_is_the_adjoint_of_conv(case):
    """torch's ConvTranspose1d(w) is the adjoint of Conv1d with the same (in, out, k) tensor read
    as a conv weight mapping `out` channels back to `in`: <convT(x), y> = <x, conv(y)>."""
    c = case
    y = np.random.default_rng(c.seed + 1).standard_normal((c.batch, c.cout, c.out_len))
    lhs = np.sum(oracles.conv_transpose1d(c.x, c.w, None, c.stride, c.padding, c.dilation) * y)
    back = oracles.conv1d(y, c.w, None, c.stride, c.padding, c.dilation)
    assert back.shape == c.x.shape, f"{case}: conv of the transpose output has {back.shape}"
    assert_close(f"{case}", lhs, np.sum(c.x * back), F64_TOL * (1 + np.abs(lhs)) * 100)


def test_mlx_layout_oracle_by_index():
    w = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    conv, convt = oracles.to_mlx_layout(w, "conv"), oracles.to_mlx_layout(w, "convT")
    for a in range(2):
        for b in range(3):
            for k in range(4):
                assert conv[a, k, b] == w[a, b, k]  # torch (out, in, k) -> (out, k, in)
                assert convt[b, k, a] == w[a, b, k]  # torch (in, out, k) -> (out, k, in)
    assert np.array_equal(oracles.to_torch_layout(convt, "convT"), w)


@given(weight_norm_pairs())
def test_weight_norm_oracle_by_rows(case):
    v = case.v.astype(np.float64)
    for i in range(v.shape[0]):
        want = case.g.astype(np.float64)[i, 0, 0] * v[i] / np.linalg.norm(v[i].ravel())
        assert_close(f"{case} row {i}", oracles.weight_norm(case.g, case.v)[i], want, F64_TOL)


@given(rope_cases(max_len=64))
@example(RopeCase(1, 1, 8, 16, 8, seed=0))
def test_rope_oracle_is_complex_rotation(case):
    """Half-split RoPE rotates the pair (x_j, x_{j+rot/2}) by pos·inv_freq_j: z·e^{iθ}."""
    h = case.rot // 2
    x = case.x.astype(np.float64)
    z = x[..., :h] + 1j * x[..., h: case.rot]
    inv = 1.0 / 10000.0 ** (np.arange(0, case.rot, 2) / case.rot)
    theta = np.arange(case.length)[:, None] * inv[None, :]
    zr = z * np.exp(1j * theta)
    want = np.concatenate([zr.real, zr.imag, x[..., case.rot:]], axis=-1)
    # the oracle uses float32 angles like torch: that rounding, ~T·6e-8 rad, is the tolerance
    assert_close(f"{case}", oracles.apply_rope(case.x, case.rot), want,
                 case.length * 1.2e-7 * (np.abs(x).max() + 1) * 2)


def test_schedule_oracle_published_values():
    published = [1.0, 0.993307, 0.982014, 0.952574, 0.880797, 0.731059, 0.5, 0.268941, 0.0]
    assert_close("oracle 8-step schedule", oracles.logsnr_schedule(8), published, 5e-7)


def test_layer_norm_oracle_moments():
    x = np.random.default_rng(0).standard_normal((3, 17)) * 5 + 2
    y = oracles.layer_norm(x, np.ones(17), np.zeros(17), 0.0)
    assert_close("mean", y.mean(-1), np.zeros(3), 1e-12)
    assert_close("biased variance", y.var(-1), np.ones(3), 1e-12)
