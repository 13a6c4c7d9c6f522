"""Mutants on the paths the first goldens never looked at (issue 15's classes of misses):
audio layout after the decoder, module-boundary inputs (T5 embedding, assembled transformer
input, residual stream, the decoder's latents), long inputs (RoPE past the golden's 33
positions, a decode stitched from chunks), later sampler steps, the CFG and euler paths, and
T5's sublayers. Conventions as in `catalogue_model` (BUG marks the changed line).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from harness.model import pipeline, t5
from harness.model import sampler as rf_sampler
from harness.model.capture import tap
from harness.model.dit import ContinuousTransformer, FourierFeatures, RotaryEmbedding, TransformerBlock
from harness.model.sampler import sample as original_sample
from harness.model.t5 import T5Attention, T5DenseActDense
from harness.model.vae import AudioAutoencoder
from harness.mutants.core import Mutant, register, replaced_parameters
from harness.mutants.core import swap as _method

T5_ENC = "conditioner.conditioners.prompt.model.encoder"
BLOCK0 = "model.model.transformer.layers.0"
# Latent frames past which the chunked-decode mutant cuts (the official `decode_audio`
# default chunk_size); only the long golden crosses it.
CHUNK_FRAMES = 128
# The rotary table of the positions-clamped mutant: the 33 positions of a 32-frame golden.
ROPE_TABLE = 33


# -- after the decoder ------------------------------------------------------------------------


def _decode_returns_interleaved(self, latents):
    x = tap(self.decoder, latents.swapaxes(1, 2), "input", channels_last=True)
    y = self.decoder(x)                      # (B, N, C) channels-last
    b, n, c = y.shape
    return tap(self, y.reshape(b, c, n))     # BUG: interleaved frames read as planar rows


def _run_returns_channels_swapped(self, input_ids, attention_mask, seconds_total, init_noise,
                                  step_noise=None, *, steps=8, sampler="pingpong",
                                  cfg_scale=1.0, decode=True, on_step=None):
    cross, global_cond = self.condition(input_ids, attention_mask, seconds_total)
    denoise = pipeline.cfg_denoiser(self.dit, cross, global_cond, cfg_scale)
    noise = None if step_noise is None else [mx.array(np.asarray(n)) for n in step_noise]
    latents = pipeline.sample(denoise, mx.array(np.asarray(init_noise, np.float32)),
                              pipeline.logsnr_schedule(steps), sampler, noise, on_step=on_step)
    if not decode:
        return latents, None
    audio = self.vae.decode(latents)[:, ::-1]  # BUG: (B, N, C) -> planar with C reversed
    return latents, tap(pipeline.OUTPUT_AUDIO, audio)


# -- module-boundary inputs ------------------------------------------------------------------


@contextmanager
def _t5_embedding_scaled(model, checkpoint):
    # BUG: the embedding scaled by sqrt(d_model) (Gemma / T5X-style), which HF T5 never does
    emb = model.conditioner.conditioners["prompt"].model.shared
    scale = math.sqrt(emb.weight.shape[1])
    with replaced_parameters([(emb, "weight", emb.weight * scale)]):
        yield


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


def _latents_reshaped(self, latents):
    b, c, t = latents.shape
    x = latents.reshape(b, t, c)  # BUG: reshaped to channels-last instead of transposed
    x = tap(self.decoder, x, "input", channels_last=True)
    return tap(self, self.decoder(x).swapaxes(1, 2))


# -- long inputs ------------------------------------------------------------------------------


def _decode_chunked_no_overlap(self, latents):
    x = tap(self.decoder, latents.swapaxes(1, 2), "input", channels_last=True)
    # BUG: long latents decoded in chunks stitched end to end, no overlap: each chunk's edges
    # see zero padding instead of their neighbours (clicks at every chunk boundary)
    parts = [self.decoder(x[:, a:a + CHUNK_FRAMES]) for a in range(0, x.shape[1], CHUNK_FRAMES)]
    return tap(self, mx.concatenate(parts, axis=1).swapaxes(1, 2))


def _freqs_clamped(self, seq_len):
    # BUG: positions past the precomputed table's end reuse its last row
    t = mx.minimum(mx.arange(seq_len), ROPE_TABLE - 1).astype(mx.float32)
    f = t[:, None] * self.inv_freq[None, :]
    f = mx.concatenate([f, f], axis=-1)
    return mx.cos(f), mx.sin(f)


# -- sampler paths ----------------------------------------------------------------------------


def _fourier_t_fp16(self, t):
    t = t.astype(mx.float16).astype(mx.float32)  # BUG: t passed through half precision
    f = 2 * math.pi * (t @ self.weight.T)
    return tap(self, mx.concatenate([mx.cos(f), mx.sin(f)], axis=-1))


def _cfg_halves_swapped(out, b):
    uncond, cond = out[:b], out[b:]  # BUG: the batch is cond then uncond
    return cond, uncond


def _euler_dt_sign(denoise, x, t, sampler="pingpong", step_noise=None, on_step=None):
    if sampler != "euler":
        return original_sample(denoise, x, t, sampler, step_noise, on_step)
    from harness.model.capture import sampler_step

    ones = mx.ones((x.shape[0],), dtype=x.dtype)
    for i in range(len(t) - 1):
        t_i, t_next = float(t[i]), float(t[i + 1])
        with sampler_step(i):
            v = denoise(x, ones * t_i)
        v = tap(f"sampler.steps.{i}.v", v)
        x = tap(f"sampler.steps.{i}.x", x + (t_i - t_next) * v)  # BUG: dt = t_i - t_next
        if on_step is not None:
            on_step(i, x)
    return x


# -- T5 sublayers -----------------------------------------------------------------------------


def _bucket_grid_flipped(length, num_buckets, max_distance):
    pos = np.arange(length)
    # BUG: query - key where HF takes key - query: every bias mirrored in time
    return mx.array(t5.relative_position_bucket(pos[:, None] - pos[None, :], num_buckets,
                                                max_distance).astype(np.int32))


def _t5_ff_gelu(self, x):
    return self.wo(nn.gelu(self.wi(x)))  # BUG: t5-v1.1's GELU where t5-base uses ReLU


def _t5_attention_scaled(self, x, bias):
    B, L, _ = x.shape

    def heads(a):
        return a.reshape(B, L, self.n_heads, -1).transpose(0, 2, 1, 3)

    q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
    scale = q.shape[-1] ** -0.5  # BUG: T5 folds the 1/sqrt(d_kv) into q's weights
    out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=bias)
    return self.o(out.transpose(0, 2, 1, 3).reshape(B, L, -1))


def _rms_norm_as_layer_norm(self, x):
    return mx.fast.layer_norm(x, self.weight, None, self.eps)  # BUG: mean subtracted


MUTANTS = [
    Mutant("decode-returns-interleaved", "pretransform.model",
           "the decoder's channels-last output read back as planar rows: each channel holds "
           "alternating L/R samples of half the clip: 'slow motion', an octave down, with a "
           "buzz at Nyquist", _method(AudioAutoencoder, "decode", _decode_returns_interleaved)),
    Mutant("run-returns-channels-swapped", pipeline.OUTPUT_AUDIO,
           "the pipeline hands back left and right exchanged after the decode: the stereo "
           "image mirrored", _method(pipeline.StableAudio, "run", _run_returns_channels_swapped)),
    Mutant("t5-embedding-scaled", f"{T5_ENC}.embed_tokens",
           "token embeddings scaled by sqrt(d_model): the residual stream of every T5 block "
           "dominated by the embedding: prompt meaning blurred, weaker prompt adherence",
           _t5_embedding_scaled),
    Mutant("prepended-token-appended", f"{BLOCK0}.input",
           "the global (timestep + seconds) token appended instead of prepended: the DiT drops "
           "the first latent frame and keeps the global token as audio: noise-level "
           "conditioning lost: hiss, mush, a click at the start",
           _method(ContinuousTransformer, "__call__", _prepend_appended)),
    Mutant("residual-after-norm", f"{BLOCK0}.cross_attend_norm.input",
           "the self-attention residual added to the normed stream: every block rescales the "
           "residual stream: loss of dynamics, washed-out noisy output",
           _method(TransformerBlock, "__call__", _residual_after_norm)),
    Mutant("latents-reshaped-not-transposed", "pretransform.model.decoder.input",
           "latents (C, T) reshaped to (T, C) instead of transposed: time and channels "
           "scrambled before the decoder: 'flickery' noise bursts at the latent rate",
           _method(AudioAutoencoder, "decode", _latents_reshaped)),
    Mutant("decode-chunks-no-overlap", "pretransform.model",
           f"long latents decoded in {CHUNK_FRAMES}-frame chunks stitched without overlap: a "
           "click (a seam) every 186 ms at 44.1 kHz; clips under the chunk length are exact. "
           "inaudible on synthetic weights: their noise-like audio jumps everywhere (seam_db "
           "10.2 stitched vs 10.1 whole, threshold 30); on music the seam detector flags such "
           "seams (README: seams)",
           _method(AudioAutoencoder, "decode", _decode_chunked_no_overlap), audible=False),
    Mutant("rope-positions-clamped", f"{BLOCK0}.self_attn.q_rotary",
           f"RoPE table of {ROPE_TABLE} positions, later positions clamped to its last row: "
           "past ~0.75 s every frame looks like the same position: timing and rhythm "
           "collapse late in the clip", _method(RotaryEmbedding, "freqs", _freqs_clamped)),
    Mutant("timestep-fp16", "model.model.timestep_features",
           "the timestep rounded to fp16 before the Fourier features: exact at t = 1 (step 0), "
           "off at every later step: inaudible at 8 steps (the features move by ~1e-4)",
           _method(FourierFeatures, "__call__", _fourier_t_fp16), audible=False),
    Mutant("cfg-halves-swapped", "model.model.cfg",
           "CFG with the cond and uncond halves exchanged: guidance pushes AWAY from the "
           "prompt (only when cfg_scale != 1): anti-prompt, harsh, over-saturated output; "
           "not audible in the audio checks' clip, which runs at cfg 1",
           _method(rf_sampler, "cfg_halves", _cfg_halves_swapped), audible=False),
    Mutant("euler-dt-sign", "sampler.steps.0.x",
           "euler integrates with dt of the wrong sign (only with --sampler euler): the noise "
           "is amplified instead of removed: loud noise; not audible in the audio checks' clip, "
           "which runs pingpong", _method(pipeline, "sample", _euler_dt_sign),
           audible=False),
    Mutant("t5-position-bias-mirrored", f"{T5_ENC}.block.0.layer.0.SelfAttention."
           "relative_attention_bias",
           "T5 relative positions taken as query - key: word order mirrored inside the "
           "encoder: prompts read backwards, weaker prompt adherence",
           _method(t5, "_bucket_grid", _bucket_grid_flipped)),
    Mutant("t5-ff-gelu", f"{T5_ENC}.block.0.layer.1.DenseReluDense",
           "T5 feed-forward with GELU where t5-base uses ReLU: every FF computes a slightly "
           "different function: prompt embedding drift, subtly different output",
           _method(T5DenseActDense, "__call__", _t5_ff_gelu)),
    Mutant("t5-attention-scaled", f"{T5_ENC}.block.0.layer.0.SelfAttention",
           "T5 attention scores divided by sqrt(d_kv) (T5 has no such scale): flattened "
           "attention in every layer: a vaguer prompt embedding",
           _method(T5Attention, "__call__", _t5_attention_scaled)),
    Mutant("t5-rmsnorm-as-layernorm", f"{T5_ENC}.block.0.layer.0.layer_norm",
           "T5's RMS norm implemented as a LayerNorm (mean subtracted): every T5 sublayer's "
           "input shifted: prompt embedding drift",
           _method(nn.RMSNorm, "__call__", _rms_norm_as_layer_norm)),
]

for _m in MUTANTS:
    register(_m)
