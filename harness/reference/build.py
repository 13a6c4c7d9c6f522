"""Build the official stable-audio-tools model from a checkpoint directory and load it strictly.

Needs the reference venv (torch, stable-audio-tools 0.0.19, transformers). Two departures
from `get_pretrained_model`, both forced by having no hub access and both explicit here:
- T5 is built from `t5/config.json` and loaded from `t5/model.safetensors` instead of
  `from_pretrained("t5-base")`; the conditioner's `T5_MODEL_DIMS` entry is set to the config's
  d_model so that a tiny T5 whose width equals cond_dim gets no `proj_out` (as t5-base at 768).
- Everything is fp32: the package casts T5 and the VAE (`model_half`) to fp16; recordings are
  made in fp32 and the checkpoint's fp16 VAE tensors are upcast on load.
Loading is strict: every key of the official state dict must be present with its exact shape
and no extra key may exist (the package's `copy_state_dict` silently skips both).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from harness.errors import BadInput
from harness.reference.checkpoint import Checkpoint, read_checkpoint
from harness.weights.validate import T5_TIED


class InjectedTokenizer:
    """Stands in for the T5 tokenizer: returns token ids set by the recorder, never tokenizes.

    The conditioner calls `tokenizer(texts, truncation=True, max_length=L, padding="max_length",
    return_tensors="pt")`; goldens are defined on token ids, so the texts are ignored.
    """

    def __init__(self):
        self.input_ids: torch.Tensor | None = None
        self.attention_mask: torch.Tensor | None = None

    def __call__(self, texts, max_length=None, **kwargs):
        if self.input_ids is None:
            raise RuntimeError("no token ids injected: the reference never tokenizes text")
        if len(texts) != self.input_ids.shape[0] or self.input_ids.shape[1] != max_length:
            raise ValueError(f"injected ids {tuple(self.input_ids.shape)} do not fit "
                             f"{len(texts)} prompts x max_length {max_length}")
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


@contextlib.contextmanager
def _offline_t5(t5_config: dict):
    """Make T5Conditioner.__init__ build T5 from our config instead of downloading t5-base."""
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    from stable_audio_tools.models.conditioners import T5Conditioner

    hf_config = T5Config(**{k: v for k, v in t5_config.items() if k != "architectures"})

    def encoder(*args, **kwargs):
        return T5EncoderModel(hf_config)

    def tokenizer(*args, **kwargs):
        return InjectedTokenizer()

    dims = {name: hf_config.d_model for name in T5Conditioner.T5_MODEL_DIMS}
    with mock.patch.object(T5EncoderModel, "from_pretrained", encoder), \
            mock.patch.object(AutoTokenizer, "from_pretrained", tokenizer), \
            mock.patch.object(T5Conditioner, "T5_MODEL_DIMS", dims):
        yield


def build_model(config: dict, t5_config: dict) -> torch.nn.Module:
    """The official ConditionedDiffusionModelWrapper, fp32, eval mode, weights not yet loaded."""
    from stable_audio_tools.models.factory import create_model_from_config

    torch.manual_seed(0)  # construction draws random init; keep it reproducible
    with _offline_t5(t5_config):
        model = create_model_from_config(config)
    model.pretransform.model_half = False  # record in fp32 (the package would run fp16)
    model = model.float().eval().requires_grad_(False)
    t5 = t5_model(model)
    t5.float().eval()
    return model


def t5_model(model: torch.nn.Module) -> torch.nn.Module:
    """T5 lives in the conditioner's __dict__ (not a registered submodule, not in state_dict)."""
    return model.conditioner.conditioners["prompt"].model


def _check_strict(expected: dict[str, torch.Tensor], given: dict[str, np.ndarray], path: Path,
                  optional: set[str] = frozenset()) -> None:
    for name, t in expected.items():
        if name not in given:
            if name in optional:
                continue
            raise BadInput(path, f"missing tensor {name} (expected shape {tuple(t.shape)})")
        if tuple(given[name].shape) != tuple(t.shape):
            raise BadInput(path, f"tensor {name} has shape {tuple(given[name].shape)}, "
                                 f"the official model needs {tuple(t.shape)}")
    extra = sorted(set(given) - set(expected))
    if extra:
        raise BadInput(path, f"unexpected tensor {extra[0]}"
                             + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))


def load_strict(model: torch.nn.Module, ckpt: Checkpoint) -> None:
    """Copy every checkpoint tensor into the model; any missing/extra/mis-shaped key is BadInput."""
    sd_path = ckpt.root / "model.safetensors"
    expected = model.state_dict()
    _check_strict(expected, ckpt.weights, sd_path)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).float() for k, v in ckpt.weights.items()}
    model.load_state_dict(tensors, strict=True)

    t5 = t5_model(model)
    t5_path = ckpt.root / "t5" / "model.safetensors"
    t5_expected = t5.state_dict()
    _check_strict(t5_expected, ckpt.t5_weights, t5_path, optional={T5_TIED})
    t5_tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).float()
                  for k, v in ckpt.t5_weights.items()}
    if T5_TIED in t5_tensors:
        if not torch.equal(t5_tensors[T5_TIED], t5_tensors["shared.weight"]):
            raise BadInput(t5_path, f"{T5_TIED} differs from shared.weight (they are tied)")
    else:
        t5_tensors[T5_TIED] = t5_tensors["shared.weight"]
    t5.load_state_dict(t5_tensors, strict=True)
    if t5.encoder.embed_tokens.weight.data_ptr() != t5.shared.weight.data_ptr():
        t5.encoder.embed_tokens.weight = t5.shared.weight  # keep the tie after loading


def load_reference(root: str | Path) -> tuple[torch.nn.Module, Checkpoint]:
    ckpt = read_checkpoint(root)
    try:
        model = build_model(ckpt.config, ckpt.t5_config)
    except (KeyError, TypeError, AssertionError, ValueError) as e:
        raise BadInput(ckpt.root / "model_config.json",
                       f"the official factory rejects this config ({type(e).__name__}: {e})") from None
    load_strict(model, ckpt)
    return model, ckpt
