"""Which recorded tensors each golden tensor's module reads: when a verdict may say "local".

Teacher forcing (divergence.teacher_forcing) hands every module the reference's tensor for
each input the golden RECORDS. A module whose input is not recorded (e.g. the q_norm after an
unrecorded to_qkv) runs on the MLX model's own, possibly wrong, input even in the replay, so
its failure there is "local or inherited", never "local". `parents` names each module's
inputs by golden name, from the data flow of the official code (the MLX model follows it):

  T5        embed_tokens -> per block: layer.0.layer_norm -> layer.0.SelfAttention (+ the
            relative_attention_bias table) -> layer.0 (residual) -> layer.1.layer_norm ->
            layer.1.DenseReluDense -> block (residual) ... -> final_layer_norm -> model
  DiT       x -> preprocess_conv -> transformer.input -> project_in -> layers.0.input (with
            the global + timestep embeddings prepended) -> per block: pre_norm -> to_qkv ->
            q/k_norm -> q/k_rotary -> self_attn -> cross_attend_norm.input (residual) ->
            cross_attend_norm -> to_q (to_kv reads to_cond_embed) -> q/k_norm -> cross_attn ->
            ff_norm.input (residual) -> ff_norm -> ff -> block (residual) ... -> project_out
            -> postprocess_conv -> model.model (-> .cfg under CFG)
  sampler   v <- DiT; denoised <- v, x; x <- denoised (pingpong) or v, x (euler)
  decoder   decoder.input <- final x; layers.j <- layers.j-1 (a block: <- its last sublayer)
            -> decoder -> pretransform.model -> output.audio

A DiT tensor `name@i` belongs to sampler step i (its x input is step i-1's x). The injected
inputs (`input.*`) and the timestep schedule are always the reference's own.
"""

from __future__ import annotations

import re

from harness.model.prefixes import DECODER, DIT, PROMPT, SECONDS, T5, VAE
_STEP = re.compile(r"^(.*)@(\d+)$")
_T5_BLOCK = re.compile(rf"^{re.escape(T5)}\.encoder\.block\.(\d+)(.*)$")
_DIT_BLOCK = re.compile(rf"^{re.escape(DIT)}\.transformer\.layers\.(\d+)(.*)$")
_SAMPLER = re.compile(r"^sampler\.steps\.(\d+)\.(v|denoised|x)$")
_DECODER_LAYER = re.compile(rf"^{re.escape(DECODER)}\.layers\.(\d+)(?:\.layers\.(\d+))?$")


def split_step(name: str) -> tuple[str, int]:
    """'model.model.ff@3' -> ('model.model.ff', 3); a name without a step is step 0."""
    m = _STEP.match(name)
    return (m.group(1), int(m.group(2))) if m else (name, 0)


def _last(names: list[str], pattern: re.Pattern, step_suffix: str = "") -> str | None:
    """The recorded name matching `pattern` with the largest first index (at this step)."""
    best, best_i = None, -1
    for n in names:
        base, _ = split_step(n)
        m = pattern.match(base)
        if m and n == base + step_suffix and int(m.group(1)) > best_i:
            best, best_i = n, int(m.group(1))
    return best


def parents(name: str, names: list[str]) -> list[str] | None:
    """Golden names of the tensors the module producing `name` reads (None: not known)."""
    base, step = split_step(name)
    at = (lambda n: f"{n}@{step}") if step else (lambda n: n)
    x_in = "input.noise" if step == 0 else f"sampler.steps.{step - 1}.x"
    if base == "sampler.t" or base.startswith("input."):
        return []

    if base.startswith(T5):
        return _t5_parents(base, names)
    if base == PROMPT:
        return [T5]
    if base == SECONDS:
        return []
    if base == "conditioner.cross_attn_cond":
        return [PROMPT, SECONDS]
    if base == "conditioner.global_cond":
        return [SECONDS]

    if base.startswith(DIT):
        return _dit_parents(base, names, at, x_in)

    m = _SAMPLER.match(base)
    if m:
        i, what = int(m.group(1)), m.group(2)
        prev_x = "input.noise" if i == 0 else f"sampler.steps.{i - 1}.x"
        if what == "v":
            cfg = f"{DIT}.cfg" if i == 0 else f"{DIT}.cfg@{i}"
            dit = DIT if i == 0 else f"{DIT}@{i}"
            return [cfg if cfg in names else dit]
        if what == "denoised":
            return [f"sampler.steps.{i}.v", prev_x]
        denoised = f"sampler.steps.{i}.denoised"
        return [denoised] if denoised in names else [f"sampler.steps.{i}.v", prev_x]

    if base.startswith(DECODER) or base in (VAE, "output.audio"):
        return _decoder_parents(base, names)
    return None


def _t5_parents(base: str, names: list[str]) -> list[str] | None:
    enc = f"{T5}.encoder"
    bias = f"{enc}.block.0.layer.0.SelfAttention.relative_attention_bias"
    if base in (f"{enc}.embed_tokens", bias):
        return []
    if base == f"{enc}.final_layer_norm":
        last = _last(names, _T5_BLOCK_ONLY)
        return [last] if last else None
    if base == T5:
        return [f"{enc}.final_layer_norm"]
    m = _T5_BLOCK.match(base)
    if not m:
        return None
    i, rest = int(m.group(1)), m.group(2)
    blk = f"{enc}.block.{i}"
    block_in = f"{enc}.embed_tokens" if i == 0 else f"{enc}.block.{i - 1}"
    return {
        ".layer.0.layer_norm": [block_in],
        ".layer.0.SelfAttention": [f"{blk}.layer.0.layer_norm", bias],
        ".layer.0": [block_in, f"{blk}.layer.0.SelfAttention"],
        ".layer.1.layer_norm": [f"{blk}.layer.0"],
        ".layer.1.DenseReluDense": [f"{blk}.layer.1.layer_norm"],
        "": [f"{blk}.layer.0", f"{blk}.layer.1.DenseReluDense"],
    }.get(rest)


_T5_BLOCK_ONLY = re.compile(rf"^{re.escape(T5)}\.encoder\.block\.(\d+)$")
_DIT_BLOCK_ONLY = re.compile(rf"^{re.escape(DIT)}\.transformer\.layers\.(\d+)$")


def _dit_parents(base: str, names: list[str], at, x_in: str) -> list[str] | None:
    d, tr = DIT, f"{DIT}.transformer"
    simple = {
        f"{d}.to_cond_embed": ["conditioner.cross_attn_cond"],
        f"{d}.to_global_embed": ["conditioner.global_cond"],
        f"{d}.timestep_features": [],
        f"{d}.to_timestep_embed": [at(f"{d}.timestep_features")],
        f"{d}.preprocess_conv": [x_in],
        f"{tr}.input": [at(f"{d}.preprocess_conv"), x_in],
        f"{tr}.project_in": [at(f"{tr}.input")],
        f"{tr}.layers.0.input": [at(f"{tr}.project_in"), at(f"{d}.to_global_embed"),
                                 at(f"{d}.to_timestep_embed")],
        f"{d}.postprocess_conv": [at(f"{tr}.project_out")],
        d: [at(f"{d}.postprocess_conv"), at(f"{tr}.project_out")],
        f"{d}.cfg": [at(d)],
    }
    if base in simple:
        return simple[base]
    step_suffix = at("")
    if base == f"{tr}.project_out":
        last = _last(names, _DIT_BLOCK_ONLY, step_suffix)
        return [last] if last else None
    m = _DIT_BLOCK.match(base)
    if not m:
        return None
    i, rest = int(m.group(1)), m.group(2)
    b = f"{tr}.layers.{i}"
    x = f"{tr}.layers.0.input" if i == 0 else f"{tr}.layers.{i - 1}"
    sa, ca = f"{b}.self_attn", f"{b}.cross_attn"
    table = {
        ".pre_norm": [x],
        ".self_attn.to_qkv": [f"{b}.pre_norm"],
        ".self_attn.q_norm": [f"{sa}.to_qkv"],
        ".self_attn.k_norm": [f"{sa}.to_qkv"],
        ".self_attn.q_rotary": [f"{sa}.q_norm"],
        ".self_attn.k_rotary": [f"{sa}.k_norm"],
        ".self_attn": [f"{sa}.q_rotary", f"{sa}.k_rotary", f"{sa}.to_qkv"],
        ".cross_attend_norm.input": [x, sa],
        ".cross_attend_norm": [f"{b}.cross_attend_norm.input"],
        ".cross_attn.to_q": [f"{b}.cross_attend_norm"],
        ".cross_attn.to_kv": [f"{d}.to_cond_embed"],
        ".cross_attn.q_norm": [f"{ca}.to_q"],
        ".cross_attn.k_norm": [f"{ca}.to_kv"],
        ".cross_attn": [f"{ca}.q_norm", f"{ca}.k_norm", f"{ca}.to_kv"],
        ".ff_norm.input": [f"{b}.cross_attend_norm.input", ca],
        ".ff_norm": [f"{b}.ff_norm.input"],
        ".ff": [f"{b}.ff_norm"],
        "": [f"{b}.ff_norm.input", f"{b}.ff"],
    }
    found = table.get(rest)
    return None if found is None else [at(n) for n in found]


def _decoder_parents(base: str, names: list[str]) -> list[str] | None:
    if base == "output.audio":
        return [VAE]
    if base == VAE:
        # the whole decode (layout, decoder, any chunking/stitching) on the reference's latents
        return [f"{DECODER}.input"]
    if base == f"{DECODER}.input":
        last = _last(names, re.compile(r"^sampler\.steps\.(\d+)\.x$"))
        return [last] if last else None
    if base == DECODER:
        last = _last(names, re.compile(rf"^{re.escape(DECODER)}\.layers\.(\d+)$"))
        return [last] if last else None
    m = _DECODER_LAYER.match(base)
    if not m:
        return None
    j, k = int(m.group(1)), m.group(2)
    prev = f"{DECODER}.input" if j == 0 else f"{DECODER}.layers.{j - 1}"
    if k is not None:
        k = int(k)
        return [prev] if k == 0 else [f"{DECODER}.layers.{j}.layers.{k - 1}"]
    inner = _last(names, re.compile(rf"^{re.escape(base)}\.layers\.(\d+)$"))
    return [inner] if inner else [prev]


def teacher_forced(name: str, names: list[str], recorded: set[str] | None = None) -> bool:
    """True when every input of `name`'s module is a recorded golden tensor (or an injected
    input), so the replay ran that module on the reference's own input."""
    found = parents(name, names)
    if found is None:
        return False
    recorded = set(names) if recorded is None else recorded
    return all(p.startswith("input.") or p in recorded for p in found)
