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
        names = cls.__dataclass_fields__
        return cls(**{k: d[k] for k in names if k in d})


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
        """Read the fields the model uses; raises KeyError/TypeError on a malformed config."""
        m = cfg["model"]
        dec = m["pretransform"]["config"]["decoder"]["config"]
        dit = m["diffusion"]["config"]
        conds = {c["id"]: c for c in m["conditioning"]["configs"]}
        secs = conds["seconds_total"]["config"]
        return cls(
            preset=cfg.get("sao_harness", {}).get("preset", "custom"),
            sample_rate=int(cfg["sample_rate"]),
            sample_size=int(cfg["sample_size"]),
            cond_dim=int(m["conditioning"]["cond_dim"]),
            max_length=int(conds["prompt"]["config"].get("max_length", 128)),
            seconds_min=float(secs.get("min_val", 0.0)),
            seconds_max=float(secs.get("max_val", 512.0)),
            t5=t5,
            dit=DiTConfig(
                io_channels=int(dit["io_channels"]), embed_dim=int(dit["embed_dim"]),
                depth=int(dit["depth"]), num_heads=int(dit["num_heads"]),
                cond_token_dim=int(dit["cond_token_dim"]),
                global_cond_dim=int(dit["global_cond_dim"]),
                project_cond_tokens=bool(dit.get("project_cond_tokens", False))),
            vae=VAEConfig(
                channels=int(dec["channels"]), c_mults=tuple(dec["c_mults"]),
                strides=tuple(dec["strides"]), latent_dim=int(dec["latent_dim"]),
                audio_channels=int(dec.get("out_channels", 2))),
        )


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


__all__ = ["T5Config", "DiTConfig", "VAEConfig", "ModelConfig", "FULL", "TINY", "TINY_TRAINED", "PRESETS",
           "preset", "replace"]
