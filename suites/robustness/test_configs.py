"""Malformed model configs and T5 configs: exit 2, one line naming the file and the field,
never a traceback (deep nesting, wrong types, zero or astronomically large dimensions)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suites.robustness.contract import bad_input, cli, rejected


def _path(d: dict, dotted: str):
    *parents, last = dotted.split(".")
    for p in parents:
        d = d[int(p)] if isinstance(d, list) else d[p]
    return d, (int(last) if isinstance(d, list) else last)


def setting(dotted: str, value):
    def edit(cfg):
        parent, key = _path(cfg, dotted)
        parent[key] = value
        return cfg
    return edit


def deleting(dotted: str):
    def edit(cfg):
        parent, key = _path(cfg, dotted)
        del parent[key]
        return cfg
    return edit


DIT = "model.diffusion.config"
DEC = "model.pretransform.config.decoder.config"
SECS = "model.conditioning.configs.1.config"

# name -> (edit of the parsed config, or raw bytes; words the one line must hold)
MODEL_CONFIGS = {
    "num-heads-zero": (setting(f"{DIT}.num_heads", 0), "num_heads 0"),
    "num-heads-negative": (setting(f"{DIT}.num_heads", -2), "num_heads -2"),
    "num-heads-string": (setting(f"{DIT}.num_heads", "2"), "num_heads must be an integer"),
    "num-heads-float": (setting(f"{DIT}.num_heads", 2.0), "num_heads must be an integer"),
    "num-heads-null": (setting(f"{DIT}.num_heads", None), "num_heads must be an integer"),
    "num-heads-not-dividing": (setting(f"{DIT}.num_heads", 3), "not divisible"),
    "embed-dim-2-40": (setting(f"{DIT}.embed_dim", 2**40), "embed_dim 1099511627776"),
    "embed-dim-zero": (setting(f"{DIT}.embed_dim", 0), "embed_dim 0"),
    "embed-dim-string": (setting(f"{DIT}.embed_dim", "128"), "embed_dim must be an integer"),
    "depth-zero": (setting(f"{DIT}.depth", 0), "depth 0"),
    "depth-million": (setting(f"{DIT}.depth", 10**6), "depth 1000000"),
    "io-channels-zero": (setting(f"{DIT}.io_channels", 0), "io_channels 0"),
    "cond-token-dim-bool": (setting(f"{DIT}.cond_token_dim", True), "cond_token_dim must be"),
    "dit-missing-field": (deleting(f"{DIT}.global_cond_dim"), "global_cond_dim"),
    "sample-rate-zero": (setting("sample_rate", 0), "sample_rate 0"),
    "sample-rate-negative": (setting("sample_rate", -44100), "sample_rate -44100"),
    "sample-rate-string": (setting("sample_rate", "44100"), "sample_rate must be an integer"),
    "sample-rate-huge": (setting("sample_rate", 10**9), "sample_rate 1000000000"),
    "sample-size-zero": (setting("sample_size", 0), "sample_size 0"),
    "sample-size-2-40": (setting("sample_size", 2**40), "sample_size 1099511627776"),
    "sample-size-below-a-frame": (setting("sample_size", 3), "shorter than one latent frame"),
    "sample-size-missing": (deleting("sample_size"), "sample_size"),
    "strides-string": (setting(f"{DEC}.strides", "248"), "strides must be a list"),
    "strides-empty": (setting(f"{DEC}.strides", []), "strides must be a list"),
    "strides-zero": (setting(f"{DEC}.strides", [0, 4, 8]), "strides must be a list"),
    "strides-huge": (setting(f"{DEC}.strides", [2, 4, 2**40]), "strides must be a list"),
    "strides-nested": (setting(f"{DEC}.strides", [[2], 4, 8]), "strides must be a list"),
    "strides-length": (setting(f"{DEC}.strides", [2, 4]), "c_mults has 3 entries"),
    "c-mults-zero": (setting(f"{DEC}.c_mults", [0, 2, 4]), "c_mults must be a list"),
    "c-mults-object": (setting(f"{DEC}.c_mults", {"a": 1}), "c_mults must be a list"),
    "channels-zero": (setting(f"{DEC}.channels", 0), "channels 0"),
    "latent-dim-zero": (setting(f"{DEC}.latent_dim", 0), "latent_dim 0"),
    "out-channels-100": (setting(f"{DEC}.out_channels", 100), "audio_channels 100"),
    "cond-dim-zero": (setting("model.conditioning.cond_dim", 0), "cond_dim 0"),
    "max-length-zero": (setting("model.conditioning.configs.0.config.max_length", 0),
                        "max_length 0"),
    "max-length-huge": (setting("model.conditioning.configs.0.config.max_length", 10**9),
                        "max_length 1000000000"),
    "seconds-min-string": (setting(f"{SECS}.min_val", "a"), "min_val must be a finite number"),
    "seconds-max-below-min": (setting(f"{SECS}.max_val", -1.0), ">= max_val"),
    "seconds-max-infinite": (setting(f"{SECS}.max_val", float("inf")), "max_val must be a finite"),
    "seconds-max-nan": (setting(f"{SECS}.max_val", float("nan")), "max_val must be a finite"),
    "configs-not-list": (setting("model.conditioning.configs", {"prompt": 1}),
                         "configs must be a list"),
    "configs-item-not-object": (setting("model.conditioning.configs", [1, 2]),
                                "configs must be a list"),
    "configs-no-prompt": (setting("model.conditioning.configs.0.id", "other"), "'prompt'"),
    "model-missing": (deleting("model"), "missing field config.model"),
    "model-list": (setting("model", [1]), "model must be an object"),
    "diffusion-missing": (deleting("model.diffusion"), "missing field model.diffusion"),
    "decoder-string": (setting("model.pretransform.config.decoder", "oobleck"), "must be an object"),
    "top-level-list": (b"[1, 2, 3]", "not a JSON object"),
    "top-level-string": (b'"model"', "not a JSON object"),
    "top-level-null": (b"null", "not a JSON object"),
    "deep-nesting": (b'{"model": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply"),
    "invalid-json": (b'{"model": ', "not valid JSON"),
    "not-utf8": (b'{"model": "\xff\xfe"}', "not valid JSON"),
    "empty-file": (b"", "not valid JSON"),
    "over-16-mb": (b"{" + b" " * (17 * 1024 * 1024) + b"}", "larger than"),
}

T5_CONFIGS = {
    "t5-num-heads-zero": (setting("num_heads", 0), "num_heads 0"),
    "t5-d-model-2-40": (setting("d_model", 2**40), "d_model 1099511627776"),
    "t5-vocab-zero": (setting("vocab_size", 0), "vocab_size 0"),
    "t5-vocab-string": (setting("vocab_size", "1024"), "vocab_size must be an integer"),
    "t5-d-kv-zero": (setting("d_kv", 0), "d_kv 0"),
    "t5-layers-huge": (setting("num_layers", 10**6), "num_layers 1000000"),
    "t5-buckets-negative": (setting("relative_attention_num_buckets", -1),
                            "relative_attention_num_buckets -1"),
    "t5-eps-string": (setting("layer_norm_epsilon", "1e-6"), "layer_norm_epsilon must be"),
    "t5-eps-negative": (setting("layer_norm_epsilon", -1.0), "layer_norm_epsilon -1.0"),
    "t5-eps-nan": (setting("layer_norm_epsilon", float("nan")), "layer_norm_epsilon must be"),
    "t5-gated": (setting("feed_forward_proj", "gated-gelu"), "not supported"),
    "t5-top-level-list": (b"[]", "not a JSON object"),
    "t5-deep-nesting": (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    "t5-invalid-json": (b"{", "not valid JSON"),
}


def _write(tiny_copy, rel: str, edit):
    ckpt = tiny_copy()
    path = ckpt / rel
    if isinstance(edit, bytes):
        path.write_bytes(edit)
    else:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return ckpt, path


@pytest.mark.parametrize("name", list(MODEL_CONFIGS))
def test_model_config(name, tiny_copy):
    edit, needle = MODEL_CONFIGS[name]
    ckpt, path = _write(tiny_copy, "model_config.json", edit)
    bad_input(cli("inspect", ckpt), path, needle)


@pytest.mark.parametrize("name", list(T5_CONFIGS))
def test_t5_config(name, tiny_copy):
    edit, needle = T5_CONFIGS[name]
    ckpt, path = _write(tiny_copy, "t5/config.json", edit)
    bad_input(cli("inspect", ckpt), path, needle)


@pytest.mark.parametrize("name", ["num-heads-zero", "embed-dim-2-40", "sample-rate-zero",
                                  "deep-nesting", "strides-string"])
def test_gate_rejects_candidate_config(name, tiny_copy):
    edit, needle = MODEL_CONFIGS[name]
    ckpt, path = _write(tiny_copy, "model_config.json", edit)
    rejected(cli("gate", ckpt, "--expect", "update", "--no-parity", "--json"), needle)


@pytest.mark.parametrize("name", ["num-heads-zero", "embed-dim-2-40", "sample-rate-zero"])
def test_generate_refuses_config(name, tiny_copy, tmp_path):
    edit, needle = MODEL_CONFIGS[name]
    ckpt, path = _write(tiny_copy, "model_config.json", edit)
    bad_input(cli("generate", "--weights", ckpt, "--out", tmp_path / "o.wav"), path, needle)
    assert not list(tmp_path.iterdir())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["sample_rate", "sample_size", f"{DIT}.num_heads",
                              f"{DIT}.embed_dim", f"{DIT}.depth", f"{DEC}.strides",
                              f"{DEC}.c_mults", f"{DEC}.channels", "model.conditioning",
                              "model.conditioning.configs", f"{SECS}.min_val", "model"]),
       value=json_values)
def test_any_field_value_is_read_or_refused(field, value, tiny_checkpoint):
    """Any JSON value in any field: a config, or ConfigError naming a field; never another
    exception."""
    from harness.model.config import ConfigError, ModelConfig, T5Config

    cfg = setting(field, value)(json.loads((tiny_checkpoint / "model_config.json").read_text()))
    try:
        ModelConfig.from_official(cfg, T5Config())
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
