"""The official model is loaded strictly: every key and shape, no extras (the package's own
copy_state_dict silently skips mismatches)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from suites.reference.needs import require_torch


require_torch()
pytestmark = pytest.mark.reference

from safetensors.numpy import load_file, save_file  # noqa: E402

from harness.errors import BadInput  # noqa: E402
from harness.reference.build import load_reference, t5_model  # noqa: E402


def _edited(src, tmp_path, file="model.safetensors", edit=None, config_edit=None):
    dst = tmp_path / "ckpt"
    shutil.copytree(src, dst)
    if edit:
        tensors = load_file(str(dst / file))
        edit(tensors)
        save_file(tensors, str(dst / file))
    if config_edit:
        cfg = json.loads((dst / "model_config.json").read_text())
        config_edit(cfg)
        (dst / "model_config.json").write_text(json.dumps(cfg))
    return dst


def test_loads_every_tensor_exactly(tiny_reference):
    model, ckpt = tiny_reference
    sd = model.state_dict()
    assert set(sd) == set(ckpt.weights)
    for name, value in ckpt.weights.items():
        np.testing.assert_array_equal(sd[name].numpy(), value.astype(np.float32), err_msg=name)
    t5 = t5_model(model).state_dict()
    for name, value in ckpt.t5_weights.items():
        np.testing.assert_array_equal(t5[name].numpy(), value.astype(np.float32), err_msg=name)
    # tied embedding: the encoder reads the very tensor loaded as shared.weight
    assert t5_model(model).encoder.embed_tokens.weight.data_ptr() == \
        t5_model(model).shared.weight.data_ptr()
    # fp32 recording model: the package's fp16 VAE (model_half) is upcast
    assert {p.dtype for p in model.parameters()} == {__import__("torch").float32}


def test_missing_key_is_named(tiny_checkpoint, tmp_path):
    key = "model.model.transformer.layers.1.ff.ff.2.bias"
    d = _edited(tiny_checkpoint, tmp_path, edit=lambda t: t.pop(key))
    with pytest.raises(BadInput, match=rf"missing tensor {key} \(expected shape \(128,\)\)"):
        load_reference(d)


def test_misshaped_key_is_named(tiny_checkpoint, tmp_path):
    key = "pretransform.model.decoder.layers.1.layers.1.weight_v"

    def edit(t):
        t[key] = np.ascontiguousarray(t[key].transpose(1, 0, 2))  # conv-transpose in/out swapped
    d = _edited(tiny_checkpoint, tmp_path, edit=edit)
    with pytest.raises(BadInput, match=rf"{key} has shape \(16, 32, 16\).*needs \(32, 16, 16\)"):
        load_reference(d)


def test_extra_key_is_named(tiny_checkpoint, tmp_path):
    d = _edited(tiny_checkpoint, tmp_path, edit=lambda t: t.update(
        {"conditioner.conditioners.prompt.proj_out.weight": np.zeros((64, 64), np.float32)}))
    with pytest.raises(BadInput, match="unexpected tensor conditioner.conditioners.prompt.proj_out"):
        load_reference(d)


def test_t5_missing_and_untied(tiny_checkpoint, tmp_path):
    key = "encoder.block.1.layer.1.DenseReluDense.wo.weight"
    d = _edited(tiny_checkpoint, tmp_path, file="t5/model.safetensors", edit=lambda t: t.pop(key))
    with pytest.raises(BadInput, match=rf"t5/model.safetensors: missing tensor {key}"):
        load_reference(d)

    def untie(t):
        t["encoder.embed_tokens.weight"] = t["shared.weight"] + np.float32(1)
    d2 = _edited(tiny_checkpoint, tmp_path / "b", file="t5/model.safetensors", edit=untie)
    with pytest.raises(BadInput, match="encoder.embed_tokens.weight differs from shared.weight"):
        load_reference(d2)


def test_non_finite_weight_is_named(tiny_checkpoint, tmp_path):
    key = "model.model.to_cond_embed.0.weight"

    def edit(t):
        t[key] = t[key].copy()
        t[key][0, 0] = np.nan
    d = _edited(tiny_checkpoint, tmp_path, edit=edit)
    with pytest.raises(BadInput, match=rf"tensor {key}: \d+ NaN/Inf values"):
        load_reference(d)


def test_config_the_factory_rejects(tiny_checkpoint, tmp_path):
    d = _edited(tiny_checkpoint, tmp_path,
                config_edit=lambda c: c["model"]["diffusion"].pop("type"))
    with pytest.raises(BadInput, match="model_config.json: the official factory rejects"):
        load_reference(d)


def test_official_copy_state_dict_would_hide_it(tiny_reference):
    """Why strictness is ours to add: the package's loader drops a mis-shaped tensor silently."""
    import torch
    from stable_audio_tools.models.utils import copy_state_dict

    model, ckpt = tiny_reference
    key = "model.model.to_cond_embed.0.weight"
    before = model.state_dict()[key].clone()
    copy_state_dict(model, {key: torch.zeros(3, 3)})  # no error ...
    assert torch.equal(model.state_dict()[key], before)  # ... and nothing loaded
