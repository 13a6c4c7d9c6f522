"""Model configuration: one dataclass per component, two presets, official JSON in and out.

`full` has the real Stable Audio Open Small dimensions. `tiny` runs the same code paths
(partial half-split RoPE, qk LayerNorm, GLU, weight-normed conv-transpose, decoder blocks
with different strides) at toy width so that whole pipelines run in seconds.

The official `model_config.json` (stable-audio-tools format) and the Hugging Face T5
`config.json` are the serialized forms; `sao_harness` in the former records the preset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class ConfigError(ValueError):
    """A config file's field is missing, of the wrong type or outside the range the model
    can be built with (one phrase naming the field)."""


# Sane ranges for every integer field: the real model sits well inside them, and anything
# outside cannot be built on any machine this harness targets (or divides by zero).
INT_RANGES = {
    "vocab_size": (1, 1_000_000), "d_model": (1, 16384), "d_kv": (1, 4096),
    "d_ff": (1, 65536), "num_layers": (1, 256), "num_heads": (1, 256),
    "relative_attention_num_buckets": (1, 4096), "relative_attention_max_distance": (1, 1 << 20),
    "io_channels": (1, 4096), "embed_dim": (1, 16384), "depth": (1, 256),
    "cond_token_dim": (1, 16384), "global_cond_dim": (1, 16384),
    "timestep_features_dim": (1, 16384), "ff_mult": (1, 64),
    "channels": (1, 4096), "latent_dim": (1, 4096), "audio_channels": (1, 8),
    "sample_rate": (1, 384_000), "sample_size": (1, 1 << 26), "cond_dim": (1, 16384),
    "max_length": (1, 4096),
}
MAX_VAE_BLOCKS, MAX_STRIDE, MAX_C_MULT = 16, 64, 64


def _int(name: str, v) -> int:
    lo, hi = INT_RANGES[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{name} must be an integer, got {_show(v)}")
    if not lo <= v <= hi:
        raise ConfigError(f"{name} {v} outside [{lo}, {hi}]")
    return v


def _float(name: str, v, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {_show(v)}")
    if not lo <= v <= hi:
        raise ConfigError(f"{name} {v} outside [{lo:g}, {hi:g}]")
    return float(v)


def _ints(name: str, v, hi: int) -> tuple[int, ...]:
    if (not isinstance(v, list) or not 1 <= len(v) <= MAX_VAE_BLOCKS
            or not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= hi
                       for x in v)):
        raise ConfigError(f"{name} must be a list of 1..{MAX_VAE_BLOCKS} integers in "
                          f"[1, {hi}], got {_show(v)}")
    return tuple(v)


def _show(v, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def _obj(d, key: str, where: str) -> dict:
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be an object, got {_show(d)}")
    if key not in d:
        raise ConfigError(f"missing field {where}.{key}")
    return d[key]


@dataclass(frozen=True)
class T5Config:
    """Hugging Face `T5Config` fields that the encoder uses (t5-base by default)."""

    vocab_size: int = 32128
    d_model: int = 768
    d_kv: int = 64
    d_ff: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "relu"

    def to_hf(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(model_type="t5", architectures=["T5EncoderModel"], pad_token_id=0,
                 eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0,
                 is_encoder_decoder=True, num_decoder_layers=self.num_layers)
        return d

    @classmethod
    def from_hf(cls, d: dict[str, Any]) -> "T5Config":
        """Fields present in `d` (the rest default to t5-base), each type- and range-checked;
        ConfigError on a bad one."""
        if not isinstance(d, dict):
            raise ConfigError(f"T5 config must be an object, got {_show(d)}")
        kw: dict[str, Any] = {}
        for k in cls.__dataclass_fields__:
            if k not in d:
                continue
            if k == "layer_norm_epsilon":
                kw[k] = _float(k, d[k], 0.0, 1.0)
            elif k == "feed_forward_proj":
                if d[k] != "relu":
                    raise ConfigError(f"feed_forward_proj {_show(d[k])} is not supported "
                                      "(T5 v1.0 'relu' only)")
                kw[k] = d[k]
            else:
                kw[k] = _int(k, d[k])
        cfg = cls(**kw)
        if cfg.num_heads * cfg.d_kv > 65536:
            raise ConfigError(f"num_heads x d_kv = {cfg.num_heads * cfg.d_kv} exceeds 65536")
        return cfg


@dataclass(frozen=True)
class DiTConfig:
    io_channels: int = 64
    embed_dim: int = 1024
    depth: int = 16
    num_heads: int = 8
    cond_token_dim: int = 768
    global_cond_dim: int = 768
    project_cond_tokens: bool = True
    timestep_features_dim: int = 256
    ff_mult: int = 4

    @property
    def dim_heads(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def rotary_dim(self) -> int:
        # ContinuousTransformer builds RotaryEmbedding(max(dim_heads // 2, 32)).
        return max(self.dim_heads // 2, 32)


@dataclass(frozen=True)
class VAEConfig:
    channels: int = 128
    c_mults: tuple[int, ...] = (1, 2, 4, 8, 16)
    strides: tuple[int, ...] = (2, 4, 4, 8, 8)
    latent_dim: int = 64  # decoder input; the encoder emits mean and scale (2x)
    audio_channels: int = 2

    @property
    def downsampling_ratio(self) -> int:
        return math.prod(self.strides)


@dataclass(frozen=True)
class ModelConfig:
    preset: str = "full"
    sample_rate: int = 44100
    sample_size: int = 524288
    cond_dim: int = 768
    max_length: int = 64  # T5 tokens
    seconds_min: float = 0.0
    seconds_max: float = 256.0
    t5: T5Config = field(default_factory=T5Config)
    dit: DiTConfig = field(default_factory=DiTConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)

    @property
    def latent_frames(self) -> int:
        return self.sample_size // self.vae.downsampling_ratio

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.vae.downsampling_ratio

    # -- official model_config.json --------------------------------------------------
    def to_official(self) -> dict[str, Any]:
        v, d = self.vae, self.dit
        oobleck = {"channels": v.channels, "c_mults": list(v.c_mults), "strides": list(v.strides),
                   "use_snake": True}
        return {
            "model_type": "diffusion_cond",
            "sample_size": self.sample_size,
            "sample_rate": self.sample_rate,
            "audio_channels": v.audio_channels,
            "model": {
                "pretransform": {
                    "type": "autoencoder",
                    "iterate_batch": True,
                    "model_half": True,
                    "config": {
                        "encoder": {"type": "oobleck", "config": {
                            "in_channels": v.audio_channels, **oobleck,
                            "latent_dim": 2 * v.latent_dim}},
                        "decoder": {"type": "oobleck", "config": {
                            "out_channels": v.audio_channels, **oobleck,
                            "latent_dim": v.latent_dim, "final_tanh": False}},
                        "bottleneck": {"type": "vae"},
                        "latent_dim": v.latent_dim,
                        "downsampling_ratio": v.downsampling_ratio,
                        "io_channels": v.audio_channels,
                    },
                },
                "conditioning": {
                    "configs": [
                        {"id": "prompt", "type": "t5",
                         "config": {"t5_model_name": "t5-base", "max_length": self.max_length}},
                        {"id": "seconds_total", "type": "number",
                         "config": {"min_val": self.seconds_min, "max_val": self.seconds_max}},
                    ],
                    "cond_dim": self.cond_dim,
                },
                "diffusion": {
                    "cross_attention_cond_ids": ["prompt", "seconds_total"],
                    "global_cond_ids": ["seconds_total"],
                    "diffusion_objective": "rf_denoiser",
                    "type": "dit",
                    "config": {
                        "io_channels": d.io_channels,
                        "embed_dim": d.embed_dim,
                        "depth": d.depth,
                        "num_heads": d.num_heads,
                        "cond_token_dim": d.cond_token_dim,
                        "global_cond_dim": d.global_cond_dim,
                        "project_cond_tokens": d.project_cond_tokens,
                        "transformer_type": "continuous_transformer",
                        "attn_kwargs": {"qk_norm": "ln"},
                    },
                },
                "io_channels": d.io_channels,
            },
            "sao_harness": {"preset": self.preset},
        }

    @classmethod
    def from_official(cls, cfg: dict[str, Any], t5: T5Config) -> "ModelConfig":
        """Read the fields the model uses, each type- and range-checked; ConfigError names
        the first missing, mistyped or out-of-range field."""
        m = _obj(cfg, "model", "config")
        pre = _obj(_obj(m, "pretransform", "model"), "config", "model.pretransform")
        dec = _obj(_obj(pre, "decoder", "pretransform.config"), "config", "decoder")
        dit = _obj(_obj(m, "diffusion", "model"), "config", "model.diffusion")
        conditioning = _obj(m, "conditioning", "model")
        configs = _obj(conditioning, "configs", "model.conditioning")
        if not isinstance(configs, list) or not all(isinstance(c, dict) and "id" in c
                                                    for c in configs):
            raise ConfigError("model.conditioning.configs must be a list of objects with an id")
        conds = {c["id"]: c for c in configs if isinstance(c["id"], str)}
        for cid in ("prompt", "seconds_total"):
            if cid not in conds or not isinstance(conds[cid].get("config", {}), dict):
                raise ConfigError(f"model.conditioning.configs lacks a {cid!r} entry")
        secs = conds["seconds_total"].get("config", {})
        prompt = conds["prompt"].get("config", {})
        harness_meta = cfg.get("sao_harness", {})
        preset = harness_meta.get("preset", "custom") if isinstance(harness_meta, dict) else "custom"
        out = cls(
            preset=preset if isinstance(preset, str) else "custom",
            sample_rate=_int("sample_rate", _obj(cfg, "sample_rate", "config")),
            sample_size=_int("sample_size", _obj(cfg, "sample_size", "config")),
            cond_dim=_int("cond_dim", _obj(conditioning, "cond_dim", "model.conditioning")),
            max_length=_int("max_length", prompt.get("max_length", 128)),
            seconds_min=_float("seconds_total min_val", secs.get("min_val", 0.0)),
            seconds_max=_float("seconds_total max_val", secs.get("max_val", 512.0)),
            t5=t5,
            dit=DiTConfig(**{k: _int(k, _obj(dit, k, "model.diffusion.config"))
                             for k in ("io_channels", "embed_dim", "depth", "num_heads",
                                       "cond_token_dim", "global_cond_dim")},
                          project_cond_tokens=bool(dit.get("project_cond_tokens", False))),
            vae=VAEConfig(
                channels=_int("channels", _obj(dec, "channels", "decoder.config")),
                c_mults=_ints("c_mults", _obj(dec, "c_mults", "decoder.config"), MAX_C_MULT),
                strides=_ints("strides", _obj(dec, "strides", "decoder.config"), MAX_STRIDE),
                latent_dim=_int("latent_dim", _obj(dec, "latent_dim", "decoder.config")),
                audio_channels=_int("audio_channels", dec.get("out_channels", 2))),
        )
        d, v = out.dit, out.vae
        if d.embed_dim % d.num_heads:
            raise ConfigError(f"embed_dim {d.embed_dim} is not divisible by num_heads "
                              f"{d.num_heads}")
        if len(v.c_mults) != len(v.strides):
            raise ConfigError(f"c_mults has {len(v.c_mults)} entries, strides {len(v.strides)}")
        if max(v.c_mults) * v.channels > 65536:
            raise ConfigError(f"VAE width {max(v.c_mults) * v.channels} exceeds 65536 channels")
        if out.latent_frames < 1:
            raise ConfigError(f"sample_size {out.sample_size} is shorter than one latent frame "
                              f"({v.downsampling_ratio} samples)")
        if not out.seconds_min < out.seconds_max:
            raise ConfigError(f"seconds_total min_val {out.seconds_min} >= max_val "
                              f"{out.seconds_max}")
        return out


FULL = ModelConfig()

TINY = ModelConfig(
    preset="tiny",
    sample_size=65536,  # 1.49 s, 1024 latent frames at ratio 64
    cond_dim=64,
    t5=T5Config(vocab_size=1024, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4),
    # dim_heads 64 -> rotary dim 32: partial RoPE over half the head, as in full.
    dit=DiTConfig(io_channels=8, embed_dim=128, depth=2, num_heads=2,
                  cond_token_dim=64, global_cond_dim=64),
    vae=VAEConfig(channels=8, c_mults=(1, 2, 4), strides=(2, 4, 8), latent_dim=8),
)

# The tiny model trained on real music (tools/train_tiny): the real decoder strides, so the latent
# rate is the real 21.53 Hz, at 1/16 of the real width; its weights are committed
# (harness/weights/data/tiny-trained), `synth` makes seeded untrained ones of the same shape.
TINY_TRAINED = ModelConfig(
    preset="tiny-trained",
    sample_size=65536,  # 1.49 s, 32 latent frames at ratio 2048
    cond_dim=64,
    t5=TINY.t5,
    dit=DiTConfig(io_channels=16, embed_dim=128, depth=2, num_heads=2,
                  cond_token_dim=64, global_cond_dim=64),
    vae=VAEConfig(channels=8, c_mults=(1, 2, 4, 8, 16), strides=(2, 4, 4, 8, 8), latent_dim=16),
)

PRESETS = {"full": FULL, "tiny": TINY, "tiny-trained": TINY_TRAINED}


def preset(name: str) -> ModelConfig:
    return PRESETS[name]


__all__ = ["ConfigError", "T5Config", "DiTConfig", "VAEConfig", "ModelConfig", "FULL", "TINY",
           "TINY_TRAINED", "PRESETS",
           "preset", "replace"]
