"""The bundled model's parameters under their official names, read off its module trees (so
there is no hand-kept list to drift from the model): MLX-layout shapes, the dtype each part has
in the official release, and which modules are convolutions (whose weights change layout).
"""

from __future__ import annotations

from functools import lru_cache

from harness.model import prefixes
from harness.model.config import ModelConfig, T5Config


@lru_cache(maxsize=8)
def _trees(cfg: ModelConfig):
    """(official prefix, module tree, release dtype) of each part in model.safetensors.
    Parameters are lazy in MLX: building a tree allocates nothing."""
    from harness.model.conditioner import NumberConditioner
    from harness.model.dit import DiffusionTransformer
    from harness.model.vae import AudioAutoencoder

    return ((prefixes.DIT, DiffusionTransformer(cfg.dit), "F32"),
            (prefixes.SECONDS, NumberConditioner(cfg.cond_dim, cfg.seconds_min, cfg.seconds_max),
             "F32"),
            (prefixes.VAE, AudioAutoencoder(cfg.vae), "F16"))


@lru_cache(maxsize=8)
def conv_modules(cfg: ModelConfig) -> dict[str, str]:
    """Module path -> "conv" | "convT" for every conv in the model (T5 has none)."""
    import mlx.nn as nn

    kinds = {}
    for prefix, tree, _ in _trees(cfg):
        for name, m in tree.named_modules():
            if isinstance(m, nn.ConvTranspose1d):
                kinds[f"{prefix}.{name}"] = "convT"
            elif isinstance(m, nn.Conv1d):
                kinds[f"{prefix}.{name}"] = "conv"
    return kinds


def is_weight_normed(module: str) -> bool:
    """Every Oobleck conv is weight-normed; the DiT's 1x1 convs are not."""
    return prefixes.part_of(module) == "vae"


@lru_cache(maxsize=8)
def checkpoint_parameters(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Official name -> (MLX-layout shape, release dtype), in the model's own order."""
    from mlx.utils import tree_flatten

    return {f"{prefix}.{name}": (tuple(p.shape), dtype) for prefix, tree, dtype in _trees(cfg)
            for name, p in tree_flatten(tree.parameters())}


@lru_cache(maxsize=8)
def t5_parameters(t5: T5Config) -> dict[str, tuple[int, ...]]:
    """Hugging Face T5EncoderModel name -> shape."""
    from mlx.utils import tree_flatten

    from harness.model.t5 import T5Encoder

    return {k: tuple(p.shape) for k, p in tree_flatten(T5Encoder(t5).parameters())}
