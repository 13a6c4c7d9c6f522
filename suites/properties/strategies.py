"""Composed hypothesis strategies. Values come from a drawn seed through numpy's PCG64, so a
failure prints a case that rebuilds itself exactly (no hidden randomness in the tests), and
each case's repr names its parameters (not its arrays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from suites.properties import oracles


seeds = st.integers(0, 2**32 - 1)


def gaussian(seed: int, shape, scale: float = 1.0, dtype=np.float32) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _rngs(seed: int, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


# -- convolutions ---------------------------------------------------------------------
@dataclass
class ConvCase:
    kind: str  # "conv" (torch weight (out, in, k)) | "convT" (torch weight (in, out, k))
    cin: int
    cout: int
    k: int
    stride: int
    padding: int
    dilation: int
    length: int
    batch: int = 1
    bias: bool = True
    seed: int = 0
    x: np.ndarray = field(init=False, repr=False)
    w: np.ndarray = field(init=False, repr=False)
    b: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self):
        s_x, s_w, s_b = _rngs(self.seed, 3)
        self.x = gaussian(s_x, (self.batch, self.cin, self.length))
        shape = (self.cout, self.cin, self.k) if self.kind == "conv" else (self.cin, self.cout, self.k)
        self.w = gaussian(s_w, shape, 1 / math.sqrt(self.cin * self.k))
        self.b = gaussian(s_b, (self.cout,), 0.1) if self.bias else None

    @property
    def out_len(self) -> int:
        f = oracles.conv_out_len if self.kind == "conv" else oracles.conv_transpose_out_len
        return f(self.length, self.k, self.stride, self.padding, self.dilation)


@st.composite
def conv_cases(draw, kind: str) -> ConvCase:
    cin, cout = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    # Square shapes (in == out == k) make every permutation of the weight shape-invisible.
    if draw(st.booleans()):
        cout = cin
    k, stride, dilation = draw(st.integers(1, 8)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    span = dilation * (k - 1)
    if kind == "conv":
        padding = draw(st.integers(0, span // 2 + 2))
        length = draw(st.integers(max(1, span + 1 - 2 * padding), max(1, span + 1 - 2 * padding) + 12))
    else:
        padding = draw(st.integers(0, span))  # torch's transpose needs padding <= d(k-1)
        length = draw(st.integers(1, 12))
        assume(oracles.conv_transpose_out_len(length, k, stride, padding, dilation) >= 1)
    return ConvCase(kind, cin, cout, k, stride, padding, dilation, length,
                    batch=draw(st.integers(1, 2)), bias=draw(st.booleans()), seed=draw(seeds))


@st.composite
def weight_shapes(draw, kind: str | None = None) -> tuple[str, tuple[int, int, int]]:
    """(kind, torch-layout shape) for a conv weight."""
    kind = kind or draw(st.sampled_from(["conv", "convT"]))
    a, b, k = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    if draw(st.booleans()):
        b = k = a  # square: a transpose is invisible by shape
    return kind, (a, b, k)


# -- weight norm ----------------------------------------------------------------------
@dataclass
class WeightNormCase:
    """A stored (official-layout) weight-norm pair: v (n0, n1, k), g (n0, 1, 1), any sign."""

    kind: str
    shape: tuple[int, int, int]
    dtype: str = "float32"
    seed: int = 0
    g: np.ndarray = field(init=False, repr=False)
    v: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        s_g, s_v = _rngs(self.seed, 2)
        dt = np.dtype(self.dtype)
        self.v = gaussian(s_v, self.shape, 1 / math.sqrt(self.shape[1] * self.shape[2])).astype(dt)
        g = gaussian(s_g, (self.shape[0], 1, 1))
        self.g = (g + np.sign(g) * 0.05).astype(dt)  # keep |g| away from 0


@st.composite
def weight_norm_pairs(draw) -> WeightNormCase:
    kind, shape = draw(weight_shapes())
    case = WeightNormCase(kind, shape, draw(st.sampled_from(["float32", "float16"])), draw(seeds))
    # A zero row of v has no direction (torch gives NaN too); the model never has one.
    assume(np.all(np.abs(case.v.astype(np.float64)).reshape(shape[0], -1).max(1) > 1e-3))
    return case


# -- transformer pieces ---------------------------------------------------------------
@dataclass
class RopeCase:
    batch: int
    heads: int
    length: int
    dim_heads: int
    rot: int
    seed: int = 0
    x: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.x = gaussian(self.seed, (self.batch, self.heads, self.length, self.dim_heads))


@st.composite
def rope_cases(draw, max_len: int = 300) -> RopeCase:
    dim_heads = 2 * draw(st.integers(1, 40))
    rot = 2 * draw(st.integers(1, dim_heads // 2))
    return RopeCase(draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, max_len)),
                    dim_heads, rot, draw(seeds))


@dataclass
class RelPosCase:
    """Query q at position m, key k at n; the same pair shifted by `shift`."""

    dim_heads: int
    rot: int
    m: int
    n: int
    shift: int
    seed: int = 0
    q: np.ndarray = field(init=False, repr=False)
    k: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        s_q, s_k = _rngs(self.seed, 2)
        self.q = gaussian(s_q, (self.dim_heads,))
        self.k = gaussian(s_k, (self.dim_heads,))


@st.composite
def relpos_cases(draw, max_pos: int = 256) -> RelPosCase:
    dim_heads = 2 * draw(st.integers(1, 40))
    rot = 2 * draw(st.integers(1, dim_heads // 2))
    m, n = draw(st.integers(0, max_pos)), draw(st.integers(0, max_pos))
    shift = draw(st.integers(1, max_pos - max(m, n) + 1))
    return RelPosCase(dim_heads, rot, m, n, shift, draw(seeds))


@dataclass
class AttentionCase:
    heads: int
    dim_heads: int
    tokens: int
    context_tokens: int  # 0: self-attention (with RoPE over `rot` dims)
    context_dim: int
    rot: int
    batch: int = 1
    seed: int = 0
    params: dict = field(init=False, repr=False)
    x: np.ndarray = field(init=False, repr=False)
    context: np.ndarray | None = field(init=False, repr=False)

    @property
    def dim(self) -> int:
        return self.heads * self.dim_heads

    def __post_init__(self):
        s = iter(_rngs(self.seed, 10))
        d = self.dim
        p = {"to_out.weight": gaussian(next(s), (d, d), d ** -0.5),
             "q_norm.weight": 1 + gaussian(next(s), (self.dim_heads,), 0.2),
             "q_norm.bias": gaussian(next(s), (self.dim_heads,), 0.2),
             "k_norm.weight": 1 + gaussian(next(s), (self.dim_heads,), 0.2),
             "k_norm.bias": gaussian(next(s), (self.dim_heads,), 0.2)}
        if self.context_tokens:
            p["to_q.weight"] = gaussian(next(s), (d, d), d ** -0.5)
            p["to_kv.weight"] = gaussian(next(s), (2 * d, self.context_dim), self.context_dim ** -0.5)
            self.context = gaussian(next(s), (self.batch, self.context_tokens, self.context_dim))
        else:
            p["to_qkv.weight"] = gaussian(next(s), (3 * d, d), d ** -0.5)
            self.context = None
        self.params = p
        self.x = gaussian(next(s), (self.batch, self.tokens, d))


@st.composite
def attention_cases(draw) -> AttentionCase:
    # dim_heads >= 8: the per-head qk LayerNorm of 2-4 numbers amplifies rounding without bound
    # when they nearly coincide (the model's heads are 64 and 128 wide).
    heads, dim_heads = draw(st.integers(1, 4)), 2 * draw(st.integers(4, 12))
    cross = draw(st.booleans())
    return AttentionCase(heads, dim_heads, draw(st.integers(1, 24)),
                         draw(st.integers(1, 12)) if cross else 0, draw(st.integers(1, 24)),
                         2 * draw(st.integers(1, dim_heads // 2)), draw(st.integers(1, 2)),
                         draw(seeds))


@dataclass
class DenseCase:
    """x (batch, tokens, dim_in) and a Linear(dim_in -> dim_out) with bias (torch layout)."""

    dim_in: int
    dim_out: int
    tokens: int = 3
    batch: int = 1
    scale: float = 1.0
    seed: int = 0
    x: np.ndarray = field(init=False, repr=False)
    w: np.ndarray = field(init=False, repr=False)
    b: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        s_x, s_w, s_b = _rngs(self.seed, 3)
        self.x = gaussian(s_x, (self.batch, self.tokens, self.dim_in), self.scale)
        self.w = gaussian(s_w, (self.dim_out, self.dim_in), self.dim_in ** -0.5)
        self.b = gaussian(s_b, (self.dim_out,), 0.5)


@st.composite
def glu_cases(draw) -> DenseCase:
    # dim_out = 2 * inner: GLU's proj emits value | gate.
    return DenseCase(draw(st.integers(1, 32)), 2 * draw(st.integers(1, 32)),
                     draw(st.integers(1, 8)), draw(st.integers(1, 2)), 2.0, draw(seeds))


@dataclass
class NormCase:
    """x (batch, tokens, dim) = offset + scale * N(0, 1); gamma near 1, beta (torch names)."""

    dim: int
    tokens: int = 3
    batch: int = 1
    offset: float = 0.0
    scale: float = 1.0
    seed: int = 0
    x: np.ndarray = field(init=False, repr=False)
    gamma: np.ndarray = field(init=False, repr=False)
    beta: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        s_x, s_g, s_b = _rngs(self.seed, 3)
        self.x = (self.offset + gaussian(s_x, (self.batch, self.tokens, self.dim), self.scale)
                  ).astype(np.float32)
        self.gamma = 1 + gaussian(s_g, (self.dim,), 0.3)
        self.beta = gaussian(s_b, (self.dim,), 0.5)


@st.composite
def layer_norm_cases(draw) -> NormCase:
    # Offset and scale vary so that mean-centering and the variance both matter.
    return NormCase(draw(st.integers(2, 64)), draw(st.integers(1, 8)), draw(st.integers(1, 2)),
                    draw(st.sampled_from([0.0, 3.0, -20.0])),
                    draw(st.sampled_from([0.05, 1.0, 30.0])), draw(seeds))


@dataclass
class SnakeCase:
    channels: int
    length: int
    batch: int = 1
    seed: int = 0
    x: np.ndarray = field(init=False, repr=False)
    alpha: np.ndarray = field(init=False, repr=False)
    beta: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        s_x, s_a, s_b = _rngs(self.seed, 3)
        self.x = gaussian(s_x, (self.batch, self.channels, self.length), 3.0)
        self.alpha = gaussian(s_a, (self.channels,), 0.5)  # log-scale
        self.beta = gaussian(s_b, (self.channels,), 0.5)


@st.composite
def snake_cases(draw) -> SnakeCase:
    return SnakeCase(draw(st.integers(1, 16)), draw(st.integers(1, 40)), draw(st.integers(1, 2)),
                     draw(seeds))


@dataclass
class NumberCase:
    seconds: tuple[float, ...]
    min_val: float
    max_val: float
    features: int
    dim: int = 256  # LearnedPositionalEmbedding width, fixed by NumberEmbedder (257 features)
    seed: int = 0
    freqs: np.ndarray = field(init=False, repr=False)
    w: np.ndarray = field(init=False, repr=False)
    b: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        s_f, s_w, s_b = _rngs(self.seed, 3)
        self.freqs = gaussian(s_f, (self.dim // 2,))
        self.w = gaussian(s_w, (self.features, self.dim + 1), (self.dim + 1) ** -0.5)
        self.b = gaussian(s_b, (self.features,), 0.1)


@st.composite
def number_cases(draw) -> NumberCase:
    lo = draw(st.sampled_from([0.0, -5.0, 1.5, 10.0]))
    hi = lo + draw(st.sampled_from([1.0, 47.0, 256.0]))
    # Seconds inside and outside [lo, hi]: the clamp must hold on both sides.
    secs = draw(st.lists(st.floats(lo - 50, hi + 100, allow_nan=False, width=32),
                         min_size=1, max_size=4))
    return NumberCase(tuple(secs), lo, hi, draw(st.integers(1, 16)), seed=draw(seeds))


# -- sampler ---------------------------------------------------------------------------
@dataclass
class PathCase:
    """A straight rectified-flow path: data x0, start noise, fresh noise per pingpong step."""

    steps: int
    channels: int = 4
    frames: int = 5
    batch: int = 1
    seed: int = 0
    x0: np.ndarray = field(init=False, repr=False)
    noise: np.ndarray = field(init=False, repr=False)
    step_noise: list = field(init=False, repr=False)

    def __post_init__(self):
        shape = (self.batch, self.channels, self.frames)
        s = _rngs(self.seed, 2)
        self.x0 = gaussian(s[0], shape)
        rng = np.random.default_rng(s[1])
        self.noise = rng.standard_normal(shape).astype(np.float32)
        self.step_noise = [rng.standard_normal(shape).astype(np.float32)
                           for _ in range(self.steps - 1)]


@st.composite
def path_cases(draw, max_steps: int = 200) -> PathCase:
    return PathCase(draw(st.integers(1, max_steps)), draw(st.integers(1, 8)),
                    draw(st.integers(1, 8)), draw(st.integers(1, 3)), draw(seeds))


# -- channels ---------------------------------------------------------------------------
@dataclass
class WavCase:
    """Planar stereo audio with different signals in L and R, and a seconds_total to trim to."""

    samples: int
    keep: int  # whole samples of seconds_total
    frac: float  # fractional sample on top: round() must decide, not int()
    seed: int = 0
    sample_rate: int = 44100
    audio: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        n = np.arange(self.samples)
        rng = np.random.default_rng(self.seed)
        left = 0.5 * np.sin(2 * np.pi * 440.0 * n / self.sample_rate) + 0.01 * rng.standard_normal(self.samples)
        right = 0.25 * np.sign(np.sin(2 * np.pi * 97.0 * n / self.sample_rate + 0.3)) - 0.1
        self.audio = np.stack([left, right]).astype(np.float32)

    @property
    def seconds(self) -> float:
        return (self.keep + self.frac) / self.sample_rate


@st.composite
def wav_cases(draw) -> WavCase:
    samples = draw(st.integers(2, 3000))
    keep = draw(st.integers(1, samples - 1))
    return WavCase(samples, keep, draw(st.sampled_from([0.0, 0.2, 0.49, 0.51, 0.8])), draw(seeds))
