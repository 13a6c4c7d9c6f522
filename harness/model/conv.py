"""Stride-1 convolutions and conv-transposes as explicit GEMMs, channels-last, PyTorch semantics.

MLX's CPU backend runs dilated and transposed convolutions through a naive loop (measured ~50x
slower than a GEMM at the decoder's sizes), so `layers.Conv1d` and `layers.ConvTranspose1d`
route through these. Same math, checked against a numpy oracle of the PyTorch semantics in
suites/properties/test_layout_props.py (both conv paths) and by the golden suites.

Three ways to lay a k-tap conv on the BLAS, picked by the output width:
- stacked taps (`conv1d_stacked`), when all k taps' outputs together (k·Co columns) are no
  wider than the input: one GEMM (T, Ci) @ (Ci, k·Co), then k shifted adds of its narrow
  column blocks. The decoder's output conv (128 -> 2 channels, k 7) read its input 7 times
  for 7 GEMMs of 2 columns: 1.66 -> 0.49 ms per 4108-sample tile on one core, same output.
- per tap (`conv1d_taps`): k GEMMs (T, Ci) @ (Ci, Co) over shifted row views of the input,
  accumulated with `addmm`; no copy of the input. Wins while Co is narrow, since im2col's
  copy of k·T·Ci floats is then large next to its GEMM (k·T·Ci·Co). Measured on 2 cores with
  OpenBLAS at the decoder's tile shapes (T 4096, Ci = Co = 128, dilation 1/3/9): 1.2-1.6x faster
  than im2col; at 256 channels 1.1-1.2x; at 512 and 1024 channels im2col is faster (1.1-2x).
- im2col (`conv1d_im2col`): the k shifted views side by side, one GEMM with K = k·Ci.
"""

from __future__ import annotations

import mlx.core as mx

TAPS_MAX_OUT_CHANNELS = 256  # per-tap GEMMs up to this output width, im2col above
STACKED_MAX_WIDTH = 1.0  # stacked taps while k·Co <= this x Ci
IM2COL_ELEMENTS = 1 << 26  # cap on one im2col buffer (256 MB fp32): chunk long inputs


def conv1d(x, w, padding: int, dilation: int, bias=None):
    """Stride-1 conv: x (B, T, Ci), w (Co, K, Ci), bias (Co,) or None -> (B, T_out, Co)."""
    co, k, ci = w.shape
    if k == 1 and padding == 0:
        return _matmul(x, w[:, 0, :].T, bias)
    if k * co <= STACKED_MAX_WIDTH * ci:
        y = conv1d_stacked(x, w, padding, dilation)
        return y if bias is None else y + bias
    if co <= TAPS_MAX_OUT_CHANNELS:
        return conv1d_taps(x, w, padding, dilation, bias)
    y = conv1d_im2col(x, w, padding, dilation)
    return y if bias is None else y + bias


def _matmul(a, b, bias):
    return a @ b if bias is None else mx.addmm(bias, a, b)


def conv1d_taps(x, w, padding: int, dilation: int, bias=None):
    """Stride-1 conv as one GEMM per kernel tap, accumulated in place (no im2col copy); the
    bias is the first accumulator, so it costs no extra pass."""
    k = w.shape[1]
    x = mx.pad(x, [(0, 0), (padding, padding), (0, 0)])
    t_out = x.shape[1] - dilation * (k - 1)
    y = _matmul(x[:, :t_out, :], w[:, 0, :].T, bias)
    for j in range(1, k):
        y = mx.addmm(y, x[:, j * dilation: j * dilation + t_out, :], w[:, j, :].T)
    return y


def conv1d_stacked(x, w, padding: int, dilation: int):
    """Stride-1 conv as one GEMM against all taps side by side (columns j·Co .. j·Co + Co - 1
    hold tap j), then the taps' column blocks added at their shifts."""
    co, k, ci = w.shape
    z = x @ w.transpose(2, 1, 0).reshape(ci, k * co)
    z = mx.pad(z, [(0, 0), (padding, padding), (0, 0)])
    t_out = z.shape[1] - dilation * (k - 1)
    y = z[:, :t_out, :co]
    for j in range(1, k):
        y = y + z[:, j * dilation: j * dilation + t_out, j * co:(j + 1) * co]
    return y


def conv1d_im2col(x, w, padding: int, dilation: int):
    """Stride-1 conv as one GEMM per chunk of at most IM2COL_ELEMENTS im2col elements."""
    co, k, ci = w.shape
    x = mx.pad(x, [(0, 0), (padding, padding), (0, 0)])
    t_out = x.shape[1] - dilation * (k - 1)
    w2 = w.reshape(co, k * ci).T
    step = max(1, IM2COL_ELEMENTS // (x.shape[0] * k * ci))
    outs = []
    for a in range(0, t_out, step):
        n = min(step, t_out - a)
        cols = mx.concatenate([x[:, a + j * dilation: a + j * dilation + n, :] for j in range(k)],
                              axis=-1)
        outs.append(cols @ w2)
    return outs[0] if len(outs) == 1 else mx.concatenate(outs, axis=1)


def conv_transpose1d(x, w, stride: int, padding: int, bias=None):
    """PyTorch ConvTranspose1d semantics (dilation 1, no output padding) as GEMMs plus
    overlap-add; x (B, T, Ci), w (Co, K, Ci), bias (Co,) or None -> (B, (T-1)·s - 2p + K, Co).

    Input frame t and kernel tap j land on output t·s + j - p. With the kernel zero-padded to
    m·s taps, tap j = i·s + r lands in block t + i, slot r: output block u is the sum over i of
    x[u - i] @ W_i, with W_i (Ci, s·Co) holding taps i·s .. i·s + s - 1 in (slot, channel)
    order. The weight is stored (Co, K, Ci), so either it or the GEMM's output must be
    re-laid out, on every call (every tile): the smaller one is. Wide blocks (2048 -> 1024
    channels, a 134 MB weight against a few MB of output per tile) take one GEMM and shifted
    adds of its output; narrow ones, one GEMM per W_i accumulated in place with `addmm`.
    """
    co, k, ci = w.shape
    b, t, _ = x.shape
    s = stride
    m = -(-k // s)
    if m * s != k:
        w = mx.pad(w, [(0, 0), (0, m * s - k), (0, 0)])
    blocks = t + m - 1
    if ci <= b * t:  # weight (Co·m·s·Ci) no larger than the GEMM output (B·T·Co·m·s)
        taps = w.transpose(1, 0, 2).reshape(m, s * co, ci)  # re-laid weight: taps[i] = W_i^T
        xp = mx.pad(x, [(0, 0), (m - 1, m - 1), (0, 0)])
        first = None if bias is None else mx.tile(bias, s)
        y = _matmul(xp[:, m - 1: m - 1 + blocks], taps[0].T, first)
        for i in range(1, m):
            y = mx.addmm(y, xp[:, m - 1 - i: m - 1 - i + blocks], taps[i].T)
        y = y.reshape(b, blocks * s, co)
    else:
        z = (x @ w.reshape(co * m * s, ci).T).reshape(b, t, co, m, s)  # the weight as stored
        y = None
        for i in range(m):  # the pad copies the output slice into (slot, channel) order
            part = mx.pad(z[:, :, :, i].transpose(0, 1, 3, 2),
                          [(0, 0), (i, m - 1 - i), (0, 0), (0, 0)])
            y = part if y is None else y + part
        y = y.reshape(b, blocks * s, co)
        if bias is not None:
            y = y + bias
    length = (t - 1) * s - 2 * padding + k
    return y[:, padding: padding + length, :]
