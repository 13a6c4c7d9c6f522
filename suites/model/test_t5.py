"""MLX T5 encoder against an independent float64 numpy transcription of HF's T5 equations."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from harness.model.config import TINY, T5Config
from harness.model.t5 import T5Encoder, relative_position_bucket
from harness.weights.validate import untie_t5

SMALL = T5Config(vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                 relative_attention_num_buckets=16, relative_attention_max_distance=20)
# float32 MLX vs float64 numpy, outputs O(1) after the final RMS norm; float32 eps is 1.2e-7.
ATOL = 1e-4


# -- independent reference (HF modeling_t5 equations, numpy float64) ---------------------
def ref_bucket(rel: int, num_buckets: int, max_distance: int) -> int:
    half = num_buckets // 2
    bucket = half if rel > 0 else 0
    n = abs(rel)
    max_exact = half // 2
    if n < max_exact:
        return bucket + n
    large = max_exact + int(math.log(n / max_exact) / math.log(max_distance / max_exact)
                            * (half - max_exact))
    return bucket + min(large, half - 1)


def ref_rms(x, w, eps):
    return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def ref_t5(w: dict[str, np.ndarray], cfg: T5Config, ids, mask, score_scale: float = 1.0):
    B, L = ids.shape
    H, eps = cfg.num_heads, cfg.layer_norm_epsilon
    h = w["shared.weight"][ids]
    table = w["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    buckets = np.array([[ref_bucket(k - q, cfg.relative_attention_num_buckets,
                                    cfg.relative_attention_max_distance)
                         for k in range(L)] for q in range(L)])
    bias = table[buckets].transpose(2, 0, 1)[None]  # (1, H, Lq, Lk)
    bias = bias + (1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min

    def split(t):
        return t.reshape(B, L, H, cfg.d_kv).transpose(0, 2, 1, 3)

    for i in range(cfg.num_layers):
        p = f"encoder.block.{i}.layer."
        x = ref_rms(h, w[p + "0.layer_norm.weight"], eps)
        q, k, v = (split(x @ w[p + f"0.SelfAttention.{n}.weight"].T) for n in "qkv")
        s = score_scale * q @ k.transpose(0, 1, 3, 2) + bias
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(B, L, H * cfg.d_kv)
        h = h + o @ w[p + "0.SelfAttention.o.weight"].T
        x = ref_rms(h, w[p + "1.layer_norm.weight"], eps)
        ff = np.maximum(x @ w[p + "1.DenseReluDense.wi.weight"].T, 0.0)
        h = h + ff @ w[p + "1.DenseReluDense.wo.weight"].T
    return ref_rms(h, w["encoder.final_layer_norm.weight"], eps)


# -- inputs --------------------------------------------------------------------------------
def hf_names(cfg: T5Config) -> set[str]:
    names = {"shared.weight", "encoder.final_layer_norm.weight",
             "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"}
    for i in range(cfg.num_layers):
        p = f"encoder.block.{i}.layer."
        names |= {p + f"0.SelfAttention.{n}.weight" for n in "qkvo"}
        names |= {p + "0.layer_norm.weight", p + "1.layer_norm.weight",
                  p + "1.DenseReluDense.wi.weight", p + "1.DenseReluDense.wo.weight"}
    return names


def random_weights(cfg: T5Config, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inner = cfg.num_heads * cfg.d_kv
    shapes = {"shared.weight": (cfg.vocab_size, cfg.d_model),
              "SelfAttention.q.weight": (inner, cfg.d_model),
              "SelfAttention.k.weight": (inner, cfg.d_model),
              "SelfAttention.v.weight": (inner, cfg.d_model),
              "SelfAttention.o.weight": (cfg.d_model, inner),
              "relative_attention_bias.weight": (cfg.relative_attention_num_buckets,
                                                 cfg.num_heads),
              "wi.weight": (cfg.d_ff, cfg.d_model), "wo.weight": (cfg.d_model, cfg.d_ff)}
    out = {}
    for name in sorted(hf_names(cfg)):
        if name.endswith("norm.weight"):  # not all ones, so a skipped gain shows
            out[name] = 1.0 + 0.2 * rng.standard_normal(cfg.d_model)
            continue
        shape = next(s for suffix, s in shapes.items() if name.endswith(suffix))
        std = 2.0 if "relative" in name else 1.0 / math.sqrt(shape[1])
        out[name] = std * rng.standard_normal(shape)
    # round to float32 once so the reference and MLX see identical weights
    return {k: v.astype(np.float32).astype(np.float64) for k, v in out.items()}


def padded_batch(cfg: T5Config, lengths: list[int], L: int, seed: int):
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), L), dtype=np.int32)
    mask = np.zeros((len(lengths), L), dtype=np.int32)
    for row, n in enumerate(lengths):
        ids[row, : n - 1] = rng.integers(2, cfg.vocab_size, n - 1)
        ids[row, n - 1] = 1  # EOS
        mask[row, :n] = 1
    return ids, mask


def mlx_model(cfg: T5Config, w: dict[str, np.ndarray]) -> T5Encoder:
    model = T5Encoder(cfg)
    model.load_weights([(k, mx.array(v.astype(np.float32))) for k, v in w.items()])  # strict
    return model


def run(model, ids, mask) -> np.ndarray:
    return np.array(model(mx.array(ids), mx.array(mask)))


CASES = [(TINY.t5, [64, 9], 64), (SMALL, [17, 40], 40), (SMALL, [3, 25], 30)]


# -- tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [TINY.t5, SMALL, T5Config()], ids=["tiny", "small", "t5-base"])
def test_parameter_names_are_hf_names(cfg):
    model = T5Encoder(cfg)
    assert {k for k, _ in tree_flatten(model.parameters())} == hf_names(cfg)


@pytest.mark.parametrize("cfg, lengths, L", CASES, ids=["tiny-L64", "small-L40", "small-L30"])
def test_matches_numpy_reference(cfg, lengths, L):
    w = random_weights(cfg, seed=L)
    ids, mask = padded_batch(cfg, lengths, L, seed=L + 1)
    out = run(mlx_model(cfg, w), ids, mask)
    assert out.shape == (2, L, cfg.d_model) and out.dtype == np.float32
    ref = ref_t5(w, cfg, ids, mask.astype(np.float64))
    err = np.abs(out - ref).max()
    assert err < ATOL, f"max abs error {err:.3g} > {ATOL} vs numpy HF T5"
    # The tolerance is tight enough to see a 1/sqrt(d_kv) attention scale.
    scaled = ref_t5(w, cfg, ids, mask.astype(np.float64), score_scale=cfg.d_kv ** -0.5)
    assert np.abs(out - scaled).max() > 100 * ATOL


def test_padded_keys_are_ignored():
    cfg = TINY.t5
    model = mlx_model(cfg, random_weights(cfg, seed=3))
    ids, mask = padded_batch(cfg, [12, 30], 32, seed=4)
    noisy = ids.copy()
    noisy[mask == 0] = np.random.default_rng(5).integers(2, cfg.vocab_size, (mask == 0).sum())
    a, b = run(model, ids, mask), run(model, noisy, mask)
    real = mask.astype(bool)
    np.testing.assert_allclose(a[real], b[real], atol=1e-6)
    # padded positions are not zeroed by the encoder (the conditioner does it)
    assert np.abs(a[~real]).min() > 0


def test_float16_weights_run_and_return_float16():
    """As HF's T5EncoderModel: the encoder computes and returns its weights' dtype (the
    conditioner makes the prompt float32)."""
    cfg = TINY.t5
    w = random_weights(cfg, seed=64)
    ids, mask = padded_batch(cfg, [64, 9], 64, seed=65)
    model = mlx_model(cfg, w)
    full = run(model, ids, mask)
    model.set_dtype(mx.float16)
    half = run(model, ids, mask)
    assert half.dtype == np.float16 and np.isfinite(half).all()
    half = half.astype(np.float32)
    # fp16 rounds at 4.9e-4 relative; measured relative RMS error ~2.5e-3 over seeds.
    rel = np.sqrt(((half - full) ** 2).mean() / (full ** 2).mean())
    assert rel < 1e-2, f"fp16 relative RMS error {rel:.3g}"


# (query, key, expected bucket) for t5-base's 32 buckets / max distance 128, by hand:
# keys after the query use buckets 16..31; distances 0..7 are exact; from 8 on,
# bucket = 8 + floor(8 * log(n / 8) / log(16)), capped at 15.
HAND = [(0, 0, 0), (0, 1, 17), (1, 0, 1), (0, 7, 23), (8, 0, 8), (0, 11, 24), (0, 12, 25),
        (16, 0, 10), (0, 16, 26), (22, 0, 10), (23, 0, 11), (32, 0, 12), (0, 32, 28),
        (0, 45, 28), (0, 46, 29), (63, 0, 13), (64, 0, 14), (0, 64, 30), (0, 90, 30),
        (0, 91, 31), (91, 0, 15), (0, 128, 31), (200, 0, 15), (0, 500, 31), (10, 3, 7)]


@pytest.mark.parametrize("q, k, expected", HAND)
def test_relative_bucket_by_hand(q, k, expected):
    assert relative_position_bucket(np.array([k - q])).tolist() == [expected]
    assert ref_bucket(k - q, 32, 128) == expected


def test_relative_bucket_grid_matches_reference_formula():
    rel = np.arange(-300, 301)
    for nb, md in [(32, 128), (16, 20), (8, 16)]:
        assert relative_position_bucket(rel, nb, md).tolist() == [
            ref_bucket(int(r), nb, md) for r in rel]


def test_untie_t5_drops_tied_embedding():
    shared = mx.arange(12, dtype=mx.float32).reshape(4, 3)
    w = {"shared.weight": shared, "encoder.embed_tokens.weight": mx.array(shared),
         "encoder.final_layer_norm.weight": mx.ones(3)}
    out = untie_t5(w)
    assert set(out) == {"shared.weight", "encoder.final_layer_norm.weight"}
    assert "encoder.embed_tokens.weight" in w  # input left alone
    assert set(untie_t5(out)) == set(out)


@pytest.mark.parametrize("shared", [mx.zeros((4, 3)), mx.ones((5, 3)), None],
                         ids=["different", "shape", "no-shared"])
def test_untie_t5_rejects_untied_embedding(shared):
    w = {"encoder.embed_tokens.weight": mx.ones((4, 3))}
    if shared is not None:
        w["shared.weight"] = shared
    with pytest.raises(ValueError, match="encoder.embed_tokens.weight"):
        untie_t5(w)


def test_gated_feed_forward_is_refused():
    with pytest.raises(ValueError, match="gated-gelu"):
        T5Encoder(T5Config(feed_forward_proj="gated-gelu"))
