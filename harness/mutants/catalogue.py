"""The mutation catalogue: porting bugs seen in (or typical of) MLX ports of this model."""

from __future__ import annotations

from contextlib import contextmanager

import mlx.core as mx
import numpy as np

from harness.model import dit as dit_module
from harness.model.capture import tap
from harness.model.conditioner import T5Conditioner
from harness.model.layers import ConvTranspose1d
from harness.mutants.core import Mutant, patched, register, replaced_parameters
from harness.weights.convert import TO_MLX

# -- RoPE: interleaved pairs instead of the official half-split ---------------------------------


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
def _rope_interleaved(model, checkpoint):
    with patched(dit_module, "apply_rotary", apply_rotary_interleaved):
        yield


# -- T5 conditioner: padded positions not zeroed -------------------------------------------------


def _t5_unzeroed_call(self, input_ids, attention_mask):
    return tap(self, self.model(input_ids, attention_mask))  # the mask multiply forgotten


@contextmanager
def _t5_padding_not_zeroed(model, checkpoint):
    with patched(T5Conditioner, "__call__", _t5_unzeroed_call):
        yield


# -- Oobleck decoder: conv-transpose weight norm taken over the wrong dim ------------------------


def fuse_weight_norm_per_output(g_official: np.ndarray, v_official: np.ndarray) -> np.ndarray:
    """The bug: ‖v‖ per MLX axis 0 (output channel), as for a plain conv. A ConvTranspose1d
    stores (in, out, k) in torch, so weight_norm(dim=0) normalises per INPUT channel."""
    perm = TO_MLX["convT"]
    v = v_official.astype(np.float32).transpose(perm)   # (out, k, in)
    g = g_official.astype(np.float32).transpose(perm)   # (1, 1, in)
    norm = np.sqrt((v * v).sum(axis=(1, 2), keepdims=True))  # (out, 1, 1)
    return v * g / norm


@contextmanager
def _convt_weight_norm_wrong_dim(model, checkpoint):
    from safetensors import safe_open

    convs = [m for _, m in model.pretransform.model.decoder.named_modules()
             if isinstance(m, ConvTranspose1d)]
    changes = []
    with safe_open(str(checkpoint.model_file), "numpy") as f:
        for m in convs:
            w = fuse_weight_norm_per_output(f.get_tensor(f"{m._path}.weight_g"),
                                            f.get_tensor(f"{m._path}.weight_v"))
            changes.append((m, "weight", mx.array(w).astype(m.weight.dtype)))
    with replaced_parameters(changes):
        yield


ROPE_INTERLEAVED = register(Mutant(
    name="rope-interleaved",
    expected_module="model.model.transformer.layers.0.self_attn.q_rotary",
    symptom="positions scrambled inside every head: timing and rhythm smear, loops drift and "
            "transients blur, while timbre stays roughly right",
    apply=_rope_interleaved))

T5_PADDING_NOT_ZEROED = register(Mutant(
    name="t5-padding-not-zeroed",
    expected_module="conditioner.conditioners.prompt",
    symptom="the DiT attends to padding embeddings: prompt adherence drops and worsens the "
            "shorter the prompt; same prompt sounds different at different padding",
    apply=_t5_padding_not_zeroed))

CONVT_WEIGHT_NORM_WRONG_DIM = register(Mutant(
    name="convt-weight-norm-wrong-dim",
    expected_module="pretransform.model.decoder.layers.1.layers.1",
    symptom="upsampling filters mis-scaled per channel: wrong loudness and spectral tilt, "
            "harsh buzzy/metallic artefacts on otherwise right timing",
    apply=_convt_weight_norm_wrong_dim))
