"""Deliberately wrong implementations, one bug each, with the signature of the real one.

Every property suite runs its property on some of these and requires a failure
(`checks.assert_detects`), so no property is vacuous. They include the bug classes the
property-suites issue names (conv-transpose with the conv permutation, interleaved RoPE,
per-output-channel weight norm on a conv-transpose, linear schedule, swapped GLU halves,
unzeroed T5 padding, L/R swapped writer). A bug the mutation catalogue also holds is the
catalogue's own function (`harness.mutants.catalogue.<subject>`), adapted here only to the
signature a property calls.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import soundfile as sf

from harness.model.conditioner import NumberConditioner
from harness.model.dit import GLU, Attention, RotaryEmbedding, apply_rotary
from harness.model.layers import LayerNorm, SnakeBeta
from harness.model.sampler import cfg_denoiser, logsnr_schedule
from harness.mutants import catalogue
from harness.weights.convert import TO_MLX, TO_OFFICIAL, conv_modules


# -- layout converters: (to_mlx(weights, cfg), to_official(weights, cfg)) ---------------
def relayout_pair(to_mlx: dict, to_official: dict, post=None, name: str = ""):
    """Dict-level converters with the given per-kind permutations (and an optional bug)."""

    def convert(perms):
        def f(weights, cfg):
            kinds = conv_modules(cfg)
            out = {}
            for key, w in weights.items():
                module, param = key.rsplit(".", 1)
                kind = kinds.get(module)
                if kind and param in ("weight", "weight_v", "weight_g"):
                    w = np.ascontiguousarray(w.transpose(perms[kind]))
                    if post is not None and perms is to_mlx:
                        w = post(w, kind)
                out[key] = w
            return out
        return f

    pair = (convert(to_mlx), convert(to_official))
    pair[0].__name__ = pair[1].__name__ = name
    return pair


# The historical bug: conv-transpose weights given the conv permutation. (0, 2, 1) is its own
# inverse, so this pair round-trips perfectly: only a layout/semantic check sees it.
CONVT_AS_CONV = relayout_pair({"conv": (0, 2, 1), "convT": (0, 2, 1)},
                              {"conv": (0, 2, 1), "convT": (0, 2, 1)}, name="convT_as_conv")
# Right forward layout, wrong inverse: the forward permutation used again on the way back.
WRONG_INVERSE = relayout_pair(TO_MLX, {"conv": (0, 2, 1), "convT": (1, 2, 0)}, name="wrong_inverse")
# Forgot to transpose conv weights: torch (out, in, k) read as MLX (out, k, in).
NO_TRANSPOSE = relayout_pair({"conv": (0, 1, 2), "convT": (1, 2, 0)}, TO_OFFICIAL,
                             name="no_transpose")
# Convolution instead of cross-correlation: kernel taps reversed.
FLIPPED_KERNEL = relayout_pair(TO_MLX, TO_OFFICIAL, post=lambda w, kind: w[:, ::-1, :].copy(),
                               name="flipped_kernel")


# -- weight-norm fusion: fuse(g, v) in MLX layout ---------------------------------------
def fuse_per_mlx_dim0(g, v):
    """Norm per MLX axis 0 (the output channel) whatever g's shape says: right for a conv,
    wrong for a conv-transpose, whose stored dim 0 is the input channel."""
    v32 = v.astype(np.float32)
    norm = np.sqrt((v32 * v32).sum(axis=(1, 2), keepdims=True))
    return v32 * (g.astype(np.float32) / norm)


def fuse_l1(g, v):
    axes = tuple(i for i, n in enumerate(g.shape) if n == 1)
    return v.astype(np.float32) * g.astype(np.float32) / np.abs(v.astype(np.float32)).sum(axes, keepdims=True)


def fuse_unnormalized(g, v):
    return v.astype(np.float32) * g.astype(np.float32)


# -- schedules -----------------------------------------------------------------------
linear_schedule = catalogue.sampler.linear_schedule


def unclamped_schedule(steps):
    return (1 / (1 + np.exp(np.linspace(-6.0, 2.0, steps + 1)))).astype(np.float32)


def increasing_schedule(steps):
    return logsnr_schedule(steps)[::-1].copy()


def off_by_one_schedule(steps):
    """linspace over `steps` points, then 0 appended: a shifted grid."""
    t = np.append(1 / (1 + np.exp(np.linspace(-6.0, 2.0, steps))), 0.0)
    t[0] = 1.0
    return t.astype(np.float32)


# -- samplers: sample(denoise, x, t, sampler, step_noise, on_step) ------------------------
def _sampler(bug: str):
    def sample(denoise, x, t, sampler="pingpong", step_noise=None, on_step=None):
        steps = len(t) - 1
        ones = mx.ones((x.shape[0],), dtype=x.dtype)
        for i in range(steps):
            t_i, t_next = float(t[i]), float(t[i + 1])
            t_eval = t_next if bug == "eval_at_next" and i else t_i
            v = denoise(x, ones * t_eval)
            if sampler == "euler":
                x = x + (t_next - t_i) * v
            else:
                x0 = x + t_i * v if bug == "x0_sign" else x - t_i * v
                if i == steps - 1:
                    x = x0
                else:
                    eps = step_noise[0 if bug == "reused_noise" else i]
                    renoise_t = t_i if bug == "renoise_t_i" else t_next
                    x = (1 - renoise_t) * x0 + renoise_t * eps
            if on_step is not None:
                on_step(i, x)
        return x

    sample.__name__ = f"sample_{bug}"
    return sample


SAMPLE_X0_SIGN = _sampler("x0_sign")
SAMPLE_RENOISE_T_I = _sampler("renoise_t_i")
SAMPLE_REUSED_NOISE = _sampler("reused_noise")
SAMPLE_EULER_SIGN = catalogue.sampler.euler_dt_sign
SAMPLE_EVAL_AT_NEXT = _sampler("eval_at_next")


# -- CFG: make(dit, cross, global_cond, scale) -> denoise -----------------------------------
def cfg_always_both(dit, cross, global_cond, scale):
    """Runs the unconditional branch even at scale 1 (same numbers, twice the DiT work)."""
    def denoise(x, t):
        b = x.shape[0]
        out = dit(mx.concatenate([x, x]), mx.concatenate([t, t]),
                  mx.concatenate([cross, mx.zeros_like(cross)]),
                  mx.concatenate([global_cond, global_cond]))
        return out[b:] + (out[:b] - out[b:]) * scale
    return denoise


def cfg_nulled_global(dit, cross, global_cond, scale):
    if scale == 1.0:
        return cfg_denoiser(dit, cross, global_cond, scale)

    def denoise(x, t):
        b = x.shape[0]
        out = dit(mx.concatenate([x, x]), mx.concatenate([t, t]),
                  mx.concatenate([cross, mx.zeros_like(cross)]),
                  mx.concatenate([global_cond, mx.zeros_like(global_cond)]))
        return out[b:] + (out[:b] - out[b:]) * scale
    return denoise


def cfg_swapped(dit, cross, global_cond, scale):
    if scale == 1.0:
        return cfg_denoiser(dit, cross, global_cond, scale)

    def denoise(x, t):
        b = x.shape[0]
        out = dit(mx.concatenate([x, x]), mx.concatenate([t, t]),
                  mx.concatenate([cross, mx.zeros_like(cross)]),
                  mx.concatenate([global_cond, global_cond]))
        return out[:b] + (out[b:] - out[:b]) * scale
    return denoise


# -- generate(seed) -> planar audio --------------------------------------------------------
def generate_unseeded(model, ids, mask, **kw):
    def gen(seed):
        rng = np.random.default_rng()  # fresh OS entropy: the seed is not used
        shape = (1, model.config.dit.io_channels, kw["frames"])
        init = rng.standard_normal(shape, dtype=np.float32)
        steps = [rng.standard_normal(shape, dtype=np.float32) for _ in range(kw["steps"] - 1)]
        _, audio = model.run(ids, mask, 1.0, init, steps, steps=kw["steps"])
        return np.array(audio[0])
    gen.__name__ = "generate_unseeded"
    return gen


def generate_seed_ignored(model, ids, mask, **kw):
    def gen(seed):
        return model.generate(ids, mask, 1.0, seed=0, **kw).audio
    gen.__name__ = "generate_seed_ignored"
    return gen


# -- RoPE: rope(x (B, H, T, Dh) numpy, rot) -> numpy ------------------------------------------
def _mx_rope(x, rot, cos_sin, apply=apply_rotary):
    cos, sin = cos_sin
    return np.array(apply(mx.array(x), cos, sin))


def rope_interleaved(x, rot):
    """Rotates adjacent pairs (x0, x1), (x2, x3)... with repeat-interleaved frequencies."""
    freqs = RotaryEmbedding(rot).freqs(x.shape[-2])
    return _mx_rope(x, rot, freqs, catalogue.dit.apply_rotary_interleaved)


def rope_unnegated(x, rot):
    """rotate_half without the minus sign: cat(x2, x1) is a reflection, not a rotation."""
    cos, sin = RotaryEmbedding(rot).freqs(x.shape[-2])
    xr = mx.array(x[..., :rot])
    x1, x2 = mx.split(xr, 2, axis=-1)
    out = xr * cos + mx.concatenate([x2, x1], axis=-1) * sin
    return np.concatenate([np.array(out), x[..., rot:]], axis=-1)


def rope_full_head(x, rot):
    """Rotates every head dim instead of the first `rot` (full instead of partial RoPE)."""
    return _mx_rope(x, x.shape[-1], RotaryEmbedding(x.shape[-1]).freqs(x.shape[-2]))


def rope_sin_off_by_one(x, rot):
    """sin table one position ahead of the cos table (a slicing bug)."""
    T = x.shape[-2]
    cos, _ = RotaryEmbedding(rot).freqs(T)
    _, sin = RotaryEmbedding(rot).freqs(T + 1)
    return _mx_rope(x, rot, (cos, sin[1:]))


# -- layers: subclasses of the real modules with one line changed ---------------------------
class AttentionHeadsDH(Attention):
    """Heads split as '(d h)' instead of '(h d)'."""

    def _heads(self, x):
        b, n, _ = x.shape
        return x.reshape(b, n, self.dim_heads, self.num_heads).transpose(0, 3, 1, 2)


class AttentionNormAfterRope(Attention):
    """qk LayerNorm applied after RoPE instead of before (the catalogue's mutant)."""

    _qk = catalogue.dit.qk_norm_after_rope


class AttentionModelDimScale(Attention):
    """Scores scaled by 1/sqrt(model dim) instead of 1/sqrt(dim_heads)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = (self.num_heads * self.dim_heads) ** -0.5


class GLUSwapped(GLU):
    """gate | value instead of value | gate (the catalogue's mutant)."""

    __call__ = catalogue.dit.glu_swapped


class GLUSigmoid(GLU):
    """sigmoid gate (classic GLU) instead of SiLU."""

    def __call__(self, x):
        value, gate = mx.split(self.proj(x), 2, axis=-1)
        return value * mx.sigmoid(gate)


class LayerNormRMS(LayerNorm):
    """No mean subtraction (an RMS norm with the LayerNorm's parameters)."""

    def __call__(self, x):
        return mx.fast.rms_norm(x, self.gamma, self.eps) + self.beta


class LayerNormUnbiased(LayerNorm):
    """Unbiased (n - 1) variance."""

    def __call__(self, x):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).sum(-1, keepdims=True) / (x.shape[-1] - 1)
        return (x - mu) * mx.rsqrt(var + self.eps) * self.gamma + self.beta


class SnakeLinearScale(SnakeBeta):
    """alpha, beta used as stored instead of exp(): the non-log-scale Snake."""

    __call__ = catalogue.vae.snake_no_exp


class NumberUnclamped(NumberConditioner):
    def __call__(self, seconds):
        s = (seconds.astype(mx.float32) - self.min_val) / (self.max_val - self.min_val)
        return self.embedder(s)[:, None, :]


class NumberMaxOnly(NumberConditioner):
    """Normalizes by max_val alone (right only when min_val is 0)."""

    def __call__(self, seconds):
        s = mx.clip(seconds.astype(mx.float32), self.min_val, self.max_val) / self.max_val
        return self.embedder(s)[:, None, :]


# -- T5 conditioner: prompt(ids, mask) -> (B, L, d) --------------------------------------------
def t5_unzeroed(prompt):
    def f(ids, mask):
        return catalogue.conditioning.t5_unzeroed_call(prompt, ids, mask)
    f.__name__ = "t5_unzeroed"
    return f


def t5_mask_ignored(prompt):
    def f(ids, mask):
        h = prompt.model(ids, mx.ones_like(mask))
        return h * mask[..., None].astype(h.dtype)
    f.__name__ = "t5_mask_ignored"
    return f


# -- WAV writers: write(path, planar audio, rate, seconds) -> samples ------------------------------
def wav_swapped(path, audio, rate, seconds):
    n = int(round(seconds * rate))
    sf.write(path, catalogue.io.channels_swapped(audio[:, :n]).T, rate, subtype="FLOAT")
    return n


def wav_truncating(path, audio, rate, seconds):
    n = int(seconds * rate)
    sf.write(path, audio[:, :n].T, rate, subtype="FLOAT")
    return n


def wav_untrimmed(path, audio, rate, seconds):
    sf.write(path, audio.T, rate, subtype="FLOAT")
    return int(round(seconds * rate))


def wav_pcm16(path, audio, rate, seconds):
    n = int(round(seconds * rate))
    sf.write(path, audio[:, :n].T, rate, subtype="PCM_16")
    return n


def wav_planar_reshaped(path, audio, rate, seconds):
    """Planar buffer handed to the writer as if interleaved: L and R samples alternate wrongly."""
    n = int(round(seconds * rate))
    sf.write(path, catalogue.io.planar_as_interleaved(audio[:, :n]).T, rate, subtype="FLOAT")
    return n
