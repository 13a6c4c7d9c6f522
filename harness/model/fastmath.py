"""Transcendentals as range reduction + polynomial, fused by `mx.compile`.

MLX's CPU `exp` and `sin` run one scalar libm call per element (measured here: `mx.exp` on
1M floats 19-24 ms, ~5x slower than the fused polynomial below), and the DiT's GLU gates and
attention softmax and the decoder's snakes touch 10^7 to 10^9 elements per clip. Multiplies
and adds fuse and vectorize under `mx.compile`, so these functions are written with nothing
else. Every one is at float32 rounding accuracy (exp: 1.0e-7 relative over [-87, 88], better
than `mx.exp`'s 3.9e-6; sin^2: 3.1e-7 absolute over |u| < 300), checked in
`suites/properties/test_fastmath_props.py` and by the golden suites.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from functools import wraps

import mlx.core as mx

from harness.host import usable_cores as _cpu_cores  # a name the suites can patch

# Cody-Waite splits: the leading part has few mantissa bits so k * part is exact.
_PI = (3.140625, 9.67502593994140625e-04, 1.509957990978376432e-07)
_LN2 = (0.693145751953125, 1.428606765330187045e-06)
_SIN_TAYLOR = (1.0, -1 / 6, 1 / 120, -1 / 5040, 1 / 362880, -1 / 39916800, 1 / 6227020800)
_EXP_TAYLOR = tuple(1 / math.factorial(i) for i in range(8))
# exp below -87 is under float32's normal range; above 88 it overflows. Clamping keeps
# 2^k a normal float (softmax inputs are <= 0 and SiLU gates are finite, so no caller
# relies on exp(-inf) being exactly 0 beyond 1e-38).
_EXP_MIN, _EXP_MAX = -87.0, 88.0
# Round to nearest, ties to even, by adding and subtracting 1.5 * 2^23 (exact for |v| <= 2^22).
# Unlike `mx.round` (one `rint` libm call per element on x86 without SSE4.1, which also stops
# the compiled loop from vectorizing), it is two adds: snake 6.5 -> 3.5 ns per element in one
# tile, bit-identical output.
_ROUNDER = 1.5 * 2**23


def _round(v):
    return (v + _ROUNDER) - _ROUNDER


def _reduce_half_turns(u):
    """r = u - k pi with k = round(u / pi), so |r| <= pi/2 (three-part pi: the reduction's
    rounding is exact up to |u| = pi * 2^22). In float32: _ROUNDER is inf in float16."""
    if u.dtype != mx.float32:
        u = u.astype(mx.float32)
    k = _round(u * (1 / math.pi))
    r = u - k * _PI[0]
    r = r - k * _PI[1]
    return r - k * _PI[2]


def _sin_reduced(r):
    """sin r for |r| <= pi/2: the degree-13 odd Taylor polynomial as r + r^3 t(r^2), t by
    Estrin's scheme (depth 5 instead of Horner's 12, so it fuses with the snake's last steps
    into one kernel: see `_snake_finish`); r added last keeps the error at Horner's (sin^2
    3.1e-7 over |u| < 300)."""
    c = _SIN_TAYLOR
    r2 = r * r
    r4 = r2 * r2
    t = (c[1] + c[2] * r2) + r4 * (c[3] + c[4] * r2) + (r4 * r4) * (c[5] + c[6] * r2)
    return r + (r * r2) * t


def _in_float32(f):
    """f computed in float32 and its result rounded back to the first input's dtype: the
    range reductions' _ROUNDER (1.5 * 2^23) is inf in float16 and not exact in bfloat16."""
    @wraps(f)
    def run(*xs):
        dtype = xs[0].dtype
        if all(x.dtype == mx.float32 for x in xs):
            return f(*xs)
        return f(*(x.astype(mx.float32) for x in xs)).astype(dtype)
    return run


@_in_float32
def sin_squared(u):
    """sin(u)^2; period pi, so u is reduced to r in [-pi/2, pi/2] first."""
    s = _sin_reduced(_reduce_half_turns(u))
    return s * s


def _clamp(x, lo, hi):
    """mx.clip's values (NaN kept) as two selects: MLX's minimum and maximum branch on NaN,
    which keeps a compiled loop from vectorizing."""
    x = mx.where(x < lo, lo, x)
    return mx.where(x > hi, hi, x)


def _reduce_ln2(x):
    """x = k ln2 + r -> (r, k), r in [-ln2/2, ln2/2], k an integer-valued float (Cody-Waite)."""
    k = _round(x * (1 / math.log(2)))
    r = x - k * _LN2[0]
    return r - k * _LN2[1], k


def _exp_bits(k):
    """The bits of the float 2^k (k integer-valued, in the normal range), as int32."""
    return mx.left_shift(k.astype(mx.int32) + 127, 23)


def _horner(p, r, coefficients):
    for c in coefficients:
        p = p * r + c
    return p


# exp(r) by Horner from the highest coefficient: the first _EXP_HEAD steps, then the rest.
_EXP_HEAD = 4
_EXP_HI, _EXP_LO = _EXP_TAYLOR[-2:-2 - _EXP_HEAD:-1], _EXP_TAYLOR[-2 - _EXP_HEAD::-1]


@_in_float32
def exp_poly(x):
    """exp(x) = 2^k * exp(r), exp(r) by a degree-7 Taylor polynomial, 2^k built from its
    exponent bits. Traced inside a compiled function (fixed shapes: MLX cannot infer shapes
    through the bit view)."""
    r, k = _reduce_ln2(_clamp(x, _EXP_MIN, _EXP_MAX))
    p = _horner(_horner(_EXP_TAYLOR[-1], r, _EXP_HI), r, _EXP_LO)
    return p * _exp_bits(k).view(mx.float32)


@mx.compile
def exp(x):
    return exp_poly(x)


@mx.compile
def silu(x):
    return x / (1.0 + exp_poly(-x))


# exp_poly's operations in the same order (same results, bit for bit), cut by hand into
# kernels that MLX fuses whole and GCC vectorizes (MLX compiles them with -O3, SSE2). Traced
# whole, MLX cuts the graph where it is more than 11 levels deep or where two outputs share a
# value, and at a cut it passes a constant as a zero-stride array, which puts the kernel on
# its strided, scalar loop; and GCC leaves a loop scalar when a select feeds arithmetic, so
# the clamp is a kernel of its own. GLU gate of 257 x 4096: 6 kernels (the last strided,
# the reduction scalar) -> 5 vectorized ones.
_clamped = mx.compile(lambda x: _clamp(x, _EXP_MIN, _EXP_MAX))
_clamped_negated = mx.compile(lambda x: _clamp(-x, _EXP_MIN, _EXP_MAX))
_reduce = mx.compile(_reduce_ln2)
_bits = mx.compile(_exp_bits)
_head = mx.compile(lambda r: _horner(_EXP_TAYLOR[-1], r, _EXP_HI))


def _exp_parts(x, clamp=_clamped):
    """(r, Horner's first steps on r, 2^k) of exp(x), for a final kernel to finish."""
    r, k = _reduce(clamp(x))
    return r, _head(r), _bits(k).view(mx.float32)


@mx.compile
def _exp_finish(r, p, two_k):
    return _horner(p, r, _EXP_LO) * two_k


@mx.compile
def _gated_silu_finish(value, gate, r, p, two_k):
    return value * (gate / (1.0 + _horner(p, r, _EXP_LO) * two_k))


@_in_float32
def gated_silu(value, gate):
    """value * SiLU(gate): the GLU of the DiT feed-forward, in float32."""
    return _gated_silu_finish(value, gate, *_exp_parts(gate, _clamped_negated))


@_in_float32
def softmax(s):
    """Softmax over the last axis (max-shifted, so exp only sees values <= 0); a float16 s
    is normalized in float32 and rounded back (as MLX's precise softmax)."""
    e = _exp_finish(*_exp_parts(s - mx.max(s, axis=-1, keepdims=True)))
    return e / mx.sum(e, axis=-1, keepdims=True)


def attention(q, k, v, scale: float):
    """softmax(q k^T * scale) v for (B, H, T, Dh) inputs; MLX's CPU fused attention spends
    most of its time in scalar exp (measured 14 ms vs ~4 ms here at 8 x 257 x 128)."""
    return softmax((q * scale) @ k.swapaxes(-1, -2)) @ v


# The snake in two compiled kernels. MLX fuses at most 11 levels of a graph into one kernel
# (more become several kernels with intermediates in memory); these two are 9 and 10 deep.
# Each kernel is a plain C++ loop that the compiler vectorizes behind a run-time check that
# no input overlaps the output, so a kernel that writes over its own input (MLX donates an
# input buffer that nothing else holds) runs scalar: measured on one 4176 x 128 tile,
# 3.3-3.8 ns per element donated against 1.3-1.5 kept (the single shapeless kernel this
# replaced: 3.8). `keep_snake_inputs` keeps them (the tiled decode uses it).
@mx.compile
def _snake_reduce(x, alpha):
    return _reduce_half_turns(alpha * x)


@mx.compile
def _snake_finish(x, r, inv_beta):
    s = _sin_reduced(r)
    s2 = (s * s).astype(x.dtype) if x.dtype != r.dtype else s * s  # float16 x: r is float32
    return x + inv_beta * s2


_local = threading.local()  # MLX streams belong to the thread that made them


@contextmanager
def keep_snake_inputs():
    """Inside, every snake's input and intermediate stay referenced until the block ends, so
    MLX cannot donate them to the snake kernels' outputs (see above). Wrap graph building
    and its `mx.eval`; costs two activations of memory per snake until then."""
    outer = getattr(_local, "kept", None)
    _local.kept = []
    try:
        yield
    finally:
        _local.kept = outer


def _snake(x, alpha, inv_beta):
    r = _snake_reduce(x, alpha)
    kept = getattr(_local, "kept", None)
    if kept is not None:
        kept += (x, r)
    return _snake_finish(x, r, inv_beta)


def snake(x, alpha, inv_beta):
    """x + inv_beta * sin^2(alpha * x), per channel on the last axis; (B, T, C) input."""
    return on_cpu_streams(_snake, x, alpha, inv_beta)


# MLX's CPU backend runs each elementwise kernel on one thread, while BLAS uses every core.
# Elementwise work on a long (B, T, C) tensor is cut along T into one slice per core, each
# evaluated on its own CPU stream (= its own thread); measured on 2 cores: full-size VAE
# decode of 32 frames 3.0 s -> 2.25 s, bit-identical output. On a GPU this is a no-op.
PARALLEL_MIN_ELEMENTS = 1 << 20


def _cpu_streams(n: int) -> tuple:
    streams = getattr(_local, "streams", ())
    if len(streams) < n:
        streams = _local.streams = streams + tuple(mx.new_stream(mx.cpu)
                                                   for _ in range(n - len(streams)))
    return streams[:n]


def cpu_streams_for(tasks: int) -> tuple:
    """One CPU stream per core (at most `tasks`, at least the default stream) for
    independent work items; on a GPU, the default stream."""
    n = min(_cpu_cores(), 8, max(tasks, 1))
    if n < 2 or mx.default_device().type != mx.cpu:
        return (mx.default_stream(mx.default_device()),)
    return _cpu_streams(n)


def on_cpu_streams(fn, x, *shared):
    """fn(x, *shared) for an elementwise fn: x is cut along axis 1, the `shared` arrays are
    passed whole (they broadcast along axis 1)."""
    n = min(_cpu_cores(), 8)
    if (n < 2 or x.ndim < 2 or x.size < PARALLEL_MIN_ELEMENTS or x.shape[1] < n
            or mx.default_device().type != mx.cpu):
        return fn(x, *shared)
    bounds = [x.shape[1] * i // n for i in range(n + 1)]
    parts = []
    for stream, a, b in zip(_cpu_streams(n), bounds, bounds[1:]):
        with mx.stream(stream):
            parts.append(fn(x[:, a:b], *shared))
    return mx.concatenate(parts, axis=1)
