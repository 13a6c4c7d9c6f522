"""Conditioning mutants: the T5 prompt encoder (tokens, padding, embedding, attention,
position bias, norms, feed-forward), the seconds_total number conditioner and the assembly of
the cross-attention and global conditioning. Each swaps one method or weight (see `core`);
a restated method differs from the model's in the line marked BUG.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from harness.model import t5
from harness.model.capture import tap
from harness.model.conditioner import (LearnedPositionalEmbedding, MultiConditioner,
                                       NumberConditioner, T5Conditioner)
from harness.model.prefixes import T5
from harness.model.t5 import T5Attention, T5DenseActDense
from harness.mutants.core import UNTRAINED, Mutant, replaced_parameters, swap

T5_ENC = f"{T5}.encoder"


# -- T5 conditioner -------------------------------------------------------------------------


def t5_unzeroed_call(self, input_ids, attention_mask):
    """T5Conditioner.__call__ with the padded positions left as the encoder made them."""
    return tap(self, self.model(input_ids, attention_mask))  # BUG: the mask multiply forgotten


def _t5_128_tokens(self, input_ids, attention_mask):
    pad = 128 - input_ids.shape[1]  # BUG: tokenizer max_length 128 (T5 default), not 64
    ids = mx.pad(input_ids, [(0, 0), (0, pad)])
    mask = mx.pad(attention_mask, [(0, 0), (0, pad)])
    h = self.model(ids, mask)
    return tap(self, h * mask[..., None].astype(mx.float32))


@contextmanager
def _t5_embedding_scaled(model, checkpoint):
    # BUG: the embedding scaled by sqrt(d_model) (Gemma / T5X-style), which HF T5 never does
    emb = model.conditioner.conditioners["prompt"].model.shared
    scale = math.sqrt(emb.weight.shape[1])
    with replaced_parameters([(emb, "weight", emb.weight * scale)]):
        yield


# -- T5 sublayers ---------------------------------------------------------------------------


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


# -- seconds conditioner and assembly -------------------------------------------------------


def _seconds_not_normalized(self, seconds):
    s = mx.clip(seconds.astype(mx.float32), self.min_val, self.max_val)  # BUG: never / max
    return tap(self, self.embedder(s)[:, None, :])


def _embedder_feature_order(self, s):
    s = s[:, None]
    f = s * self.weights[None, :] * 2 * math.pi
    return mx.concatenate([mx.sin(f), mx.cos(f), s], axis=-1)  # BUG: official is [s, sin, cos]


def _global_dropped(self, input_ids, attention_mask, seconds_total):
    prompt = self.conditioners["prompt"](input_ids, attention_mask)
    seconds = self.conditioners["seconds_total"](seconds_total)
    cross = mx.concatenate([prompt, seconds], axis=1)
    glob = mx.zeros_like(seconds[:, 0, :])  # BUG: global conditioning never filled in
    return tap("conditioner.cross_attn_cond", cross), tap("conditioner.global_cond", glob)


def _extra_seconds_start(self, input_ids, attention_mask, seconds_total):
    prompt = self.conditioners["prompt"](input_ids, attention_mask)
    seconds = self.conditioners["seconds_total"](seconds_total)
    # BUG: the large model's seconds_start token (0 s) kept: 66 cross tokens, not 65
    start = self.conditioners["seconds_total"].embedder(mx.zeros_like(seconds_total))[:, None, :]
    cross = mx.concatenate([prompt, start, seconds], axis=1)
    return tap("conditioner.cross_attn_cond", cross), tap("conditioner.global_cond", seconds[:, 0, :])


MUTANTS = [
    Mutant("t5-padding-not-zeroed", "conditioner.conditioners.prompt",
           "the DiT attends to padding embeddings: prompt adherence drops and worsens the "
           "shorter the prompt; same prompt sounds different at different padding",
           swap(T5Conditioner, "__call__", t5_unzeroed_call)),
    Mutant("t5-128-tokens", f"{T5_ENC}.embed_tokens",
           "prompt tokenized to 128 instead of 64: cross-attention over 64 extra (zero) "
           "tokens dilutes the prompt: weaker prompt adherence",
           swap(T5Conditioner, "__call__", _t5_128_tokens)),
    Mutant("t5-embedding-scaled", f"{T5_ENC}.embed_tokens",
           "token embeddings scaled by sqrt(d_model): the residual stream of every T5 block "
           "dominated by the embedding: prompt meaning blurred, weaker prompt adherence",
           _t5_embedding_scaled),
    Mutant("t5-position-bias-mirrored", f"{T5_ENC}.block.0.layer.0.SelfAttention."
           "relative_attention_bias",
           "T5 relative positions taken as query - key: word order mirrored inside the "
           "encoder: prompts read backwards, weaker prompt adherence",
           swap(t5, "_bucket_grid", _bucket_grid_flipped)),
    Mutant("t5-ff-gelu", f"{T5_ENC}.block.0.layer.1.DenseReluDense",
           "T5 feed-forward with GELU where t5-base uses ReLU: every FF computes a slightly "
           "different function: prompt embedding drift, subtly different output",
           swap(T5DenseActDense, "__call__", _t5_ff_gelu)),
    Mutant("t5-attention-scaled", f"{T5_ENC}.block.0.layer.0.SelfAttention",
           "T5 attention scores divided by sqrt(d_kv) (T5 has no such scale): flattened "
           "attention in every layer: a vaguer prompt embedding",
           swap(T5Attention, "__call__", _t5_attention_scaled)),
    Mutant("t5-rmsnorm-as-layernorm", f"{T5_ENC}.block.0.layer.0.layer_norm",
           "T5's RMS norm implemented as a LayerNorm (mean subtracted): every T5 sublayer's "
           "input shifted: prompt embedding drift",
           swap(nn.RMSNorm, "__call__", _rms_norm_as_layer_norm)),
    Mutant("seconds-not-normalized", "conditioner.conditioners.seconds_total",
           "seconds_total fed in seconds, not scaled to [0, 1]: duration conditioning far "
           "outside its range: wrong length/ending, loops or abrupt silence",
           swap(NumberConditioner, "__call__", _seconds_not_normalized)),
    Mutant("embedder-feature-order", "conditioner.conditioners.seconds_total",
           "seconds embedder features as [sin, cos, s] instead of [s, sin, cos]: duration "
           "conditioning scrambled: wrong length/ending" + UNTRAINED,
           swap(LearnedPositionalEmbedding, "__call__", _embedder_feature_order), audible=False),
    Mutant("global-cond-dropped", "conditioner.global_cond",
           "global (seconds) conditioning zeroed: the DiT never learns the clip length: "
           "music runs into the padding, no clean ending" + UNTRAINED,
           swap(MultiConditioner, "__call__", _global_dropped), audible=False),
    Mutant("extra-seconds-start-token", "conditioner.cross_attn_cond",
           "the large model's seconds_start token added: 66 cross tokens where 65 were "
           "trained: shifted cross-attention, weaker prompt and timing control" + UNTRAINED,
           swap(MultiConditioner, "__call__", _extra_seconds_start), audible=False),
]
