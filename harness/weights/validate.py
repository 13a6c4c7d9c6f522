"""What an official checkpoint must hold, and a strict comparison against it.

The expected key set, shapes and dtypes are derived from the MLX model tree (whose names
are the official ones) and the layout rules in `convert`, so there is no hand-kept list
to drift from the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.model.config import ModelConfig, T5Config
from harness.model.parameters import (checkpoint_parameters, conv_modules, is_weight_normed,
                                      t5_parameters)
from harness.weights.convert import TO_OFFICIAL
from harness.weights.safetensors_io import FLOAT_DTYPES

T5_TIED = "encoder.embed_tokens.weight"


@dataclass(frozen=True)
class Spec:
    shape: tuple[int, ...]
    dtype: str  # dtype of the official release (F32 DiT and conditioner, F16 VAE)


def _official_shape(shape: tuple[int, ...], kind: str | None) -> tuple[int, ...]:
    return tuple(shape[i] for i in TO_OFFICIAL[kind]) if kind else tuple(shape)


@lru_cache(maxsize=8)
def expected_checkpoint(cfg: ModelConfig) -> dict[str, Spec]:
    """Official `model.safetensors` keys -> Spec, in the model's own order."""
    kinds = conv_modules(cfg)
    specs: dict[str, Spec] = {}
    for key, (mlx_shape, dtype) in checkpoint_parameters(cfg).items():
        module, param = key.rsplit(".", 1)
        kind = kinds.get(module) if param == "weight" else None
        shape = _official_shape(mlx_shape, kind)
        if kind and is_weight_normed(module):
            g_shape = (shape[0], 1, 1)  # dim 0 of the stored tensor
            specs[f"{module}.weight_g"] = Spec(g_shape, dtype)
            specs[f"{module}.weight_v"] = Spec(shape, dtype)
        else:
            specs[key] = Spec(shape, dtype)
    return specs


@lru_cache(maxsize=8)
def expected_t5(t5: T5Config) -> dict[str, Spec]:
    return {k: Spec(shape, "F32") for k, shape in t5_parameters(t5).items()}


def untie_t5(weights: dict) -> dict:
    """T5 weights without `encoder.embed_tokens.weight`, which Hugging Face ties to
    `shared.weight` (numpy or MLX arrays; the input is left alone). A copy that differs is
    refused: the model reads `shared.weight` only."""
    weights = dict(weights)
    tied = weights.pop(T5_TIED, None)
    shared = weights.get("shared.weight")
    if tied is not None and (shared is None or tied.shape != shared.shape
                             or not np.array_equal(np.asarray(tied), np.asarray(shared))):
        raise ValueError(f"{T5_TIED} differs from shared.weight (they must be tied)")
    return weights


def problems(path: Path, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str],
             expected: dict[str, Spec], optional: tuple[str, ...] = ()) -> list[str]:
    """Every missing, unexpected, mis-shaped or wrongly typed tensor, one phrase each."""
    out = []
    for key, spec in expected.items():
        if key not in shapes:
            out.append(f"missing tensor {key} {spec.shape}")
        elif tuple(shapes[key]) != spec.shape:
            out.append(f"tensor {key} has shape {tuple(shapes[key])}, expected {spec.shape}")
        elif dtypes[key] not in FLOAT_DTYPES:
            out.append(f"tensor {key} has dtype {dtypes[key]}, expected a float type "
                       f"(official: {spec.dtype})")
    for key in shapes:
        if key not in expected and key not in optional:
            out.append(f"unexpected tensor {key} {tuple(shapes[key])}")
    return out


def raise_problems(path: Path, found: list[str], limit: int = 6) -> None:
    if found:
        more = f"; and {len(found) - limit} more" if len(found) > limit else ""
        raise BadInput(path, f"{len(found)} problem(s): " + "; ".join(found[:limit]) + more)
