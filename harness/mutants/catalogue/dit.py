"""DiT mutants: RoPE (layout, dims, positions), attention (qk norm, output projection),
LayerNorm eps, the GLU feed-forward, the timestep features and the transformer's input and
residual stream. Each swaps one function, method or weight (see `core`); a restated method
differs from the model's in the line marked BUG.
"""

from __future__ import annotations

import math
from contextlib import ExitStack, contextmanager

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from harness.model import dit as dit_module
from harness.model import fastmath
from harness.model.capture import tap
from harness.model.dit import (GLU, Attention, ContinuousTransformer, DiffusionTransformer,
                               FourierFeatures, RotaryEmbedding, TransformerBlock, apply_rotary)
from harness.model.layers import LayerNorm
from harness.mutants.core import UNTRAINED, Mutant, patched, replaced_parameters, swap

DIT = "model.model"
BLOCK0 = f"{DIT}.transformer.layers.0"
# The rotary table of the positions-clamped mutant: the 33 positions of a 32-frame golden.
ROPE_TABLE = 33


# -- RoPE ---------------------------------------------------------------------------------------


def apply_rotary_interleaved(x, cos, sin):
    """Rotates adjacent pairs (x0, x1), (x2, x3)... (GPT-J / Llama-Meta layout) with each
    frequency repeated twice; the official rotate_half pairs x_i with x_{i + rot/2}."""
    rot = cos.shape[-1]
    half = rot // 2
    c = mx.repeat(cos[:, :half], 2, axis=-1)  # cos is cat(f, f): its first half holds f
    s = mx.repeat(sin[:, :half], 2, axis=-1)
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    pairs = x_rot.reshape(*x_rot.shape[:-1], half, 2)
    rotated = mx.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x_rot.shape)
    return mx.concatenate([x_rot * c + rotated * s, x_pass], axis=-1)


@contextmanager
def _rope_all_dims(model, checkpoint):
    rope = model.dit.transformer.rotary_pos_emb
    dim = model.dit.config.dim_heads  # BUG: rotary over the whole head, not its first half
    inv = 1.0 / (10000.0 ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    with replaced_parameters([(rope, "inv_freq", mx.array(inv.astype(np.float32)))]):
        yield


def _freqs_without_prepend(self, seq_len):
    # BUG: positions numbered over the audio frames only; the prepended token shares 0
    t = mx.concatenate([mx.zeros((1,)), mx.arange(seq_len - 1).astype(mx.float32)])
    f = t[:, None] * self.inv_freq[None, :]
    f = mx.concatenate([f, f], axis=-1)
    return mx.cos(f), mx.sin(f)


def _freqs_clamped(self, seq_len):
    # BUG: positions past the precomputed table's end reuse its last row
    t = mx.minimum(mx.arange(seq_len), ROPE_TABLE - 1).astype(mx.float32)
    f = t[:, None] * self.inv_freq[None, :]
    f = mx.concatenate([f, f], axis=-1)
    return mx.cos(f), mx.sin(f)


# -- attention and norms --------------------------------------------------------------------------


def qk_norm_after_rope(self, q, k, rotary):
    """Attention._qk with the qk LayerNorm applied to the rotated q and k."""
    if rotary is not None:  # BUG: RoPE before the qk LayerNorm
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
    q = tap(self.q_norm, self.q_norm(q))
    k = tap(self.k_norm, self.k_norm(k))
    if rotary is not None:
        q, k = tap(self, q, "q_rotary"), tap(self, k, "k_rotary")
    return q, k


def _norm_eps(kind, eps):
    """Every DiT norm of class `kind` with `eps`: nn.LayerNorm are the qk norms (official
    1e-6), harness LayerNorm the block norms (official 1e-5)."""
    @contextmanager
    def apply(model, checkpoint):
        with ExitStack() as stack:
            for _, m in model.dit.named_modules():
                if isinstance(m, kind):
                    stack.enter_context(patched(m, "eps", eps))
            yield
    return apply


@contextmanager
def _square_transposed(model, checkpoint):
    lin = model.dit.transformer.layers[0].self_attn.to_out
    with replaced_parameters([(lin, "weight", lin.weight.T)]):
        yield


# -- feed-forward -----------------------------------------------------------------------------------


def glu_swapped(self, x):
    """GLU.__call__ gating the value half with the gate half's roles exchanged."""
    gate, value = self.proj.chunks(x, 2)  # BUG: halves swapped
    return fastmath.gated_silu(value, gate)


@contextmanager
def _dropped_bias(model, checkpoint):
    proj = model.dit.transformer.layers[0].ff.ff[0].proj
    with replaced_parameters([(proj, "bias", mx.zeros_like(proj.bias))]):
        yield


# -- timestep, transformer input and residual stream -------------------------------------------------


def _fourier_t_fp16(self, t):
    t = t.astype(mx.float16).astype(mx.float32)  # BUG: t passed through half precision
    f = 2 * math.pi * (t @ self.weight.T)
    return tap(self, mx.concatenate([mx.cos(f), mx.sin(f)], axis=-1))


def _preprocess_no_residual(self, x):
    return self.preprocess_conv(x)  # BUG: "+ x" forgotten


def _prepend_appended(self, x, prepend, context):
    tokens = mx.concatenate([self.project_in(x), prepend], axis=1)  # BUG: global token last
    x = tap(self.layers[0], tokens, "input")
    rotary = self.rotary_pos_emb.freqs(x.shape[1])
    for layer in self.layers:
        x = layer(x, context, rotary)
    return self.project_out(x)


def _residual_after_norm(self, x, context, rotary):
    h = self.pre_norm(x)
    x = h + self.self_attn(h, rotary=rotary)  # BUG: the residual taken from the normed stream
    x = tap(self.cross_attend_norm, x, "input")
    x = x + self.cross_attn(self.cross_attend_norm(x), context=context)
    x = tap(self.ff_norm, x, "input")
    x = x + self.ff(self.ff_norm(x))
    return tap(self, x)


MUTANTS = [
    Mutant("rope-interleaved", f"{BLOCK0}.self_attn.q_rotary",
           "positions scrambled inside every head: timing and rhythm smear, loops drift and "
           "transients blur, while timbre stays roughly right",
           swap(dit_module, "apply_rotary", apply_rotary_interleaved)),
    Mutant("rope-all-dims", f"{BLOCK0}.self_attn.q_rotary",
           "RoPE over all head dims with the wrong frequency ladder: position mixed into the "
           "content half of every head: rhythm drifts, smeared transients", _rope_all_dims),
    Mutant("positions-skip-prepended-token", f"{BLOCK0}.self_attn.q_rotary",
           "frame positions off by one against the global token: the conditioning token "
           "looks one frame away from where it was trained: weaker timing/duration control" +
           UNTRAINED,
           swap(RotaryEmbedding, "freqs", _freqs_without_prepend), audible=False),
    Mutant("rope-positions-clamped", f"{BLOCK0}.self_attn.q_rotary",
           f"RoPE table of {ROPE_TABLE} positions, later positions clamped to its last row: "
           "past ~0.75 s every frame looks like the same position: timing and rhythm "
           "collapse late in the clip", swap(RotaryEmbedding, "freqs", _freqs_clamped)),
    Mutant("qk-norm-after-rope", f"{BLOCK0}.self_attn.q_norm",
           "LayerNorm applied to rotated q/k re-mixes the rotation: attention loses relative "
           "position: loose rhythm, 'slow motion'-like smeared onsets",
           swap(Attention, "_qk", qk_norm_after_rope)),
    Mutant("glu-value-gate-swapped", f"{BLOCK0}.ff",
           "GLU gates the wrong half: every feed-forward layer computes a different function: "
           "noise-like, prompt-agnostic output", swap(GLU, "__call__", glu_swapped)),
    Mutant("layernorm-eps-1e-6-vs-1e-5", f"{BLOCK0}.pre_norm",
           "block LayerNorms (pre/cross/ff norm) with eps 1e-6 where the official is 1e-5: "
           "inaudible; the goldens see it against the tiny floors only (at pre_norm's own "
           "output, vs 110 dB; trained model: 109.1 dB vs its 110 dB)",
           _norm_eps(LayerNorm, 1e-6), audible=False),  # BUG: the mlx/HF-style 1e-6
    Mutant("qk-norm-eps-1e-5-vs-1e-6", f"{BLOCK0}.self_attn.q_norm",
           "qk LayerNorm eps 1e-5 where the official is 1e-6: inaudible; the goldens see it "
           "against the tiny floors only (107.6 dB vs 110 dB; 95.6 dB where the cross-attention "
           "keys of zeroed padding tokens have low variance; trained model: 106.4 dB vs 110)",
           _norm_eps(nn.LayerNorm, 1e-5), audible=False),  # BUG: the block norms' 1e-5
    Mutant("dropped-bias", f"{BLOCK0}.ff",
           "feed-forward projection loaded without its bias: shifted GLU gates, a systematic "
           "offset in every step's velocity: dull, low-contrast output", _dropped_bias),
    Mutant("square-weight-transposed", f"{BLOCK0}.self_attn",
           "a square (dim x dim) attention output projection loaded transposed (no shape "
           "error to warn): heads mixed wrongly: garbled, noisy texture", _square_transposed),
    Mutant("timestep-fp16", f"{DIT}.timestep_features",
           "the timestep rounded to fp16 before the Fourier features: exact at t = 1 (step 0), "
           "off at every later step: inaudible at 8 steps (the features move by ~1e-4)",
           swap(FourierFeatures, "__call__", _fourier_t_fp16), audible=False),
    Mutant("preprocess-conv-no-residual", f"{DIT}.transformer.input",
           "the 1x1 preprocess conv replaces the latent instead of adding to it: the noisy "
           "latent reaches the transformer distorted: wrong denoising, hiss and mush",
           swap(DiffusionTransformer, "preprocess", _preprocess_no_residual)),
    Mutant("prepended-token-appended", f"{BLOCK0}.input",
           "the global (timestep + seconds) token appended instead of prepended: the DiT drops "
           "the first latent frame and keeps the global token as audio: noise-level "
           "conditioning lost: hiss, mush, a click at the start",
           swap(ContinuousTransformer, "__call__", _prepend_appended)),
    Mutant("residual-after-norm", f"{BLOCK0}.cross_attend_norm.input",
           "the self-attention residual added to the normed stream: every block rescales the "
           "residual stream: loss of dynamics, washed-out noisy output",
           swap(TransformerBlock, "__call__", _residual_after_norm)),
]
