"""Official (PyTorch) layout <-> MLX layout, and weight-norm fusion.

Names are shared: the MLX model's attribute tree *is* the official module tree, so
conversion only re-lays conv weights:

- Conv1d           torch (out, in, k)  -> MLX (out, k, in)    transpose (0, 2, 1)
- ConvTranspose1d  torch (in, out, k)  -> MLX (out, k, in)    transpose (1, 2, 0)

`weight_g`/`weight_v` keep their names through the (bit-exact, invertible) layout step;
`fuse_weight_norm` then replaces them with `weight = g · v / ‖v‖`, the norm taken per dim 0
of the *stored* tensor (per output channel for a conv, per input channel for a
conv-transpose), no epsilon, as torch.nn.utils.weight_norm(dim=0) does.
"""

from __future__ import annotations

import numpy as np

from harness.model.config import ModelConfig
from harness.model.parameters import conv_modules

TO_MLX = {"conv": (0, 2, 1), "convT": (1, 2, 0)}
TO_OFFICIAL = {"conv": (0, 2, 1), "convT": (2, 0, 1)}


def _relayout(weights: dict[str, np.ndarray], cfg: ModelConfig, perms) -> dict[str, np.ndarray]:
    kinds = conv_modules(cfg)
    out = {}
    for key, w in weights.items():
        module, param = key.rsplit(".", 1)
        kind = kinds.get(module)
        if kind and param in ("weight", "weight_v", "weight_g"):
            w = np.ascontiguousarray(w.transpose(perms[kind]))
        out[key] = w
    return out


def official_to_mlx(weights: dict[str, np.ndarray], cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Pure re-layout (dtype and values untouched), exactly inverted by `mlx_to_official`."""
    return _relayout(weights, cfg, TO_MLX)


def mlx_to_official(weights: dict[str, np.ndarray], cfg: ModelConfig) -> dict[str, np.ndarray]:
    return _relayout(weights, cfg, TO_OFFICIAL)


def fuse_pair(g: np.ndarray, v: np.ndarray) -> np.ndarray:
    """w = v · (g / ‖v‖) in float32; the norm runs over every axis where g has size 1."""
    g32, v32 = g.astype(np.float32), v.astype(np.float32)
    axes = tuple(i for i, n in enumerate(g.shape) if n == 1)
    norm = np.sqrt(np.sum(v32 * v32, axis=axes, keepdims=True))
    return v32 * (g32 / norm)


def fuse_weight_norm(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """MLX-layout weights with `X.weight_g`/`X.weight_v` pairs -> `X.weight`."""
    out = {}
    for key, w in weights.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            module = key[: -len(".weight_v")]
            out[f"{module}.weight"] = fuse_pair(weights[f"{module}.weight_g"], w)
        else:
            out[key] = w
    return out


def reference_form(raw: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    """Official-layout tensor `name` of a checkpoint as a fused-weight file (an extraction)
    holds it: a weight-normed conv's `weight` fused from its g and v; float64."""
    if name in raw:
        return raw[name].astype(np.float64)
    module = name.rsplit(".", 1)[0]
    g, v = raw.get(f"{module}.weight_g"), raw.get(f"{module}.weight_v")
    if name.endswith(".weight") and g is not None and v is not None:
        return fuse_pair(g, v).astype(np.float64)
    return None
