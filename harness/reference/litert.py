"""Export the official PyTorch model to LiteRT in Arm's three-file split and record it.

Each wrapper holds the official submodules under their official attribute names, so the
TFLite tensor names (`<qualified class>_<attr>` per module call, joined by '/', ';N' suffixes)
map back to state-dict module paths. Intermediates come from an interpreter run with
`experimental_preserve_all_tensors` (reference kernels, no XNNPACK: delegated partitions do not
keep intermediates). A module's output is the last tensor, in op execution order, produced
inside its scope with the element count of the torch recording's tensor.

Glue that the official forward does in Python on lists (tokenizing, `torch.tensor(floats)`),
and so cannot be exported, is restated in `Conditioners.forward`; the torch-vs-LiteRT test
checks it against the official conditioner outputs.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.reference.build import t5_model
from harness.golden.inputs import Inputs
from harness.model import prefixes
from harness.reference.tflite import ARM_FILES, T5_TOKENS, Pipeline, run_pipeline


class Conditioners(nn.Module):
    """input_ids, attention_mask (1,128) int64, seconds_total (1,) -> Arm's three outputs."""

    def __init__(self, model, max_length: int):
        super().__init__()
        self.conditioners = model.conditioner.conditioners  # official ModuleDict
        self.t5 = t5_model(model)
        self.max_length = max_length

    def forward(self, input_ids, attention_mask, seconds_total):
        n = self.max_length
        hidden = self.t5(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask[:, :n]
        # T5Conditioner.forward after the tokenizer: proj_out, then zero the padding.
        prompt = self.conditioners["prompt"].proj_out(hidden[:, :n])
        prompt = prompt * mask.unsqueeze(-1).float()
        # NumberConditioner.forward after torch.tensor(floats): clamp, normalise, embed.
        nc = self.conditioners["seconds_total"]
        s = (seconds_total.clamp(nc.min_val, nc.max_val) - nc.min_val) / (nc.max_val - nc.min_val)
        seconds = nc.embedder(s).unsqueeze(1)
        ones = torch.ones_like(mask[:, :1])
        return {"cross_attention_input": torch.cat([prompt, seconds], dim=1),
                "cross_attention_masks": torch.cat([mask, ones], dim=1).float(),
                "global_cond": seconds.squeeze(1)}


class DiT(nn.Module):
    """x (1,C,T), t (1,), cross_attn_cond, global_cond -> v: the DiTWrapper as the sampler calls it."""

    def __init__(self, model):
        super().__init__()
        self.model = model.model  # DiTWrapper; its .model is the DiffusionTransformer

    def forward(self, x, t, cross_attn_cond, global_cond):
        return self.model(x, t, cross_attn_cond=cross_attn_cond, global_cond=global_cond,
                          cfg_scale=1.0, use_checkpointing=False)


class Autoencoder(nn.Module):
    """latents (1,C,T) -> planar audio (2, N) through the official pretransform.decode."""

    def __init__(self, model):
        super().__init__()
        self.pretransform = model.pretransform

    def forward(self, latents):
        return self.pretransform.decode(latents)[0]


class Rotary(nn.Module):
    """Gives RoPE its own module scope (`self_attn.q_rotary` / `.k_rotary`) in the export;
    the computation is the package's own `apply_rotary_pos_emb`."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, t, freqs):
        return self.fn(t, freqs)


@contextlib.contextmanager
def rotary_scopes(dit_root: nn.Module):
    """Route each self-attention's two apply_rotary_pos_emb calls (q, then k) through
    `q_rotary` / `k_rotary` child modules. Adds no parameters or buffers."""
    import stable_audio_tools.models.transformer as tr

    original = tr.apply_rotary_pos_emb
    current: list = [None, 0]
    attns = [m for n, m in dit_root.named_modules()
             if isinstance(m, tr.Attention) and n.endswith("self_attn")]
    handles = []
    for a in attns:
        a.q_rotary, a.k_rotary = Rotary(original), Rotary(original)

        def pre(mod, args):
            current[0], current[1] = mod, 0
        handles.append(a.register_forward_pre_hook(pre))

    def routed(t, freqs, *args, **kwargs):
        mod = current[0]
        if mod is None or args or kwargs or current[1] > 1:
            return original(t, freqs, *args, **kwargs)
        child = (mod.q_rotary, mod.k_rotary)[current[1]]
        current[1] += 1
        return child(t, freqs)

    tr.apply_rotary_pos_emb = routed
    try:
        yield
    finally:
        tr.apply_rotary_pos_emb = original
        for h in handles:
            h.remove()
        for a in attns:
            del a.q_rotary, a.k_rotary


def sample_kwargs(model, frames: int, max_length: int) -> dict[str, dict[str, torch.Tensor]]:
    cond_dim = model.conditioner.conditioners["seconds_total"].output_dim
    io = model.io_channels
    ids = torch.zeros(1, T5_TOKENS, dtype=torch.long)
    ids[0, :2] = torch.tensor([5, 1])
    return {
        "conditioners": dict(input_ids=ids, attention_mask=(ids != 0).long(),
                             seconds_total=torch.tensor([2.5])),
        "dit": dict(x=torch.zeros(1, io, frames), t=torch.tensor([0.5]),
                    cross_attn_cond=torch.zeros(1, max_length + 1, cond_dim),
                    global_cond=torch.zeros(1, cond_dim)),
        "autoencoder": dict(latents=torch.zeros(1, io, frames)),
    }


def wrappers(model, max_length: int) -> dict[str, nn.Module]:
    return {"conditioners": Conditioners(model, max_length).eval(), "dit": DiT(model).eval(),
            "autoencoder": Autoencoder(model).eval()}


def export(model, out_dir: str | Path, frames: int, max_length: int):
    """Write the three .tflite files (fp32, no quantisation) for batch 1 and `frames` latents.

    Returns ({role: path}, {role: {tflite scope: official module path}})."""
    import litert_torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = sample_kwargs(model, frames, max_length)
    paths, maps = {}, {}
    logging.getLogger().setLevel(logging.ERROR)
    for role, module in wrappers(model, max_length).items():
        path = out_dir / ARM_FILES[role]
        with torch.no_grad(), (rotary_scopes(module) if role == "dit" else contextlib.nullcontext()):
            maps[role] = scopes(module, role, kwargs[role])
            edge = litert_torch.convert(module, sample_kwargs=kwargs[role], enable_x64=True)
        edge.export(str(path))
        paths[role] = path
    return paths, maps


# -- naming: TFLite scopes -> official module paths -------------------------------------------

OFFICIAL_PREFIX = {"conditioners": {"conditioners": f"{prefixes.CONDITIONER}.conditioners",
                                    "t5": prefixes.T5},
                   "dit": {"model": "model"},
                   "autoencoder": {"pretransform": "pretransform"}}


def _official(role: str, path: str) -> str | None:
    head, _, rest = path.partition(".")
    prefix = OFFICIAL_PREFIX[role].get(head)
    return None if prefix is None else prefix + ("." + rest if rest else "")


def scopes(module: nn.Module, role: str, kwargs: dict) -> dict[str, str]:
    """TFLite scope string of every called submodule -> its official path.

    The exporter names ops by the stack of modules *called* (`<module>.<qualname>_<attr>`
    per level, attr = last part of the module's path); modules reached without being called
    (ModuleList, methods like `pretransform.decode`) leave no segment. So the stack is taken
    from one hooked torch run on the export's sample inputs."""
    names = {m: n for n, m in module.named_modules()}
    stack: list[str] = []
    out: dict[str, str] = {}
    handles = []

    def seg(mod):
        return f"{type(mod).__module__}.{type(mod).__qualname__}" + (
            f"_{names[mod].rsplit('.', 1)[-1]}" if names[mod] else "")

    def pre(mod, args, kwargs_=None):
        stack.append(seg(mod))
        official = _official(role, names[mod]) if names[mod] else None
        if official is not None:
            out.setdefault("/".join(stack), official)

    def post(mod, args, output):
        stack.pop()

    for mod in names:
        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))
    try:
        module(**kwargs)
    finally:
        for h in handles:
            h.remove()
    return out


def _scope_of(tensor_name: str) -> str:
    """First scope of a TFLite tensor name ('a/b/c;1;d/e' -> 'a/b/c')."""
    return tensor_name.split(";")[0]


def merges(shape: tuple[int, ...], other: tuple[int, ...]) -> bool:
    """Is `other` `shape` with size-1 axes dropped and runs of adjacent axes merged (the same
    C-order memory, e.g. (1,2,33,64) -> (1,66,64))? A permuted layout is not."""
    src = [d for d in shape if d != 1]
    dst = [d for d in other if d != 1]
    i = 0
    for d in dst:
        prod = 1
        while i < len(src) and prod < d:
            prod *= src[i]
            i += 1
        if prod != d:
            return False
    return i == len(src)


def pick_intermediates(produced, scope_map: dict[str, str], wanted: dict[str, tuple[int, ...]],
                       seq: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """For each wanted official name (with its batch-1 torch shape), the last op output inside
    its scope that holds the torch tensor in C order (same shape up to size-1 axes and merged
    adjacent axes). A tensor in another layout is not guessed at and is left out. seq=(64, 128): T5 runs on 128 tokens in the export;
    a (.., 128, d) tensor stands for the torch (.., 64, d) one by its first 64 positions
    (identical when the real tokens fit in 64: padding keys are masked)."""
    by_official = {v: k for k, v in scope_map.items()}
    found: dict[str, np.ndarray] = {}
    for official, shape in wanted.items():
        scope = by_official.get(official)
        if scope is None:
            continue
        best = None
        for _, name, value in produced:
            s = _scope_of(name)
            if not (s == scope or s.startswith(scope + "/")) or value.dtype.kind != "f":
                continue
            if seq and value.ndim == len(shape) and value.shape[1] == seq[1] and shape[1] == seq[0]:
                value = value[:, : seq[0]]
            if merges(shape, value.shape):
                best = value
        if best is not None:
            found[official] = best.reshape(shape).astype(np.float32)
    return found


# Torch-recorder names no TFLite tensor stands for unambiguously: a module's *input* (a forward
# pre-hook; the graph holds only producers' outputs), the DiT at sampler steps >= 1 (`@i`: one
# export, called per step), the norms, projections and T5 sublayers the converter folds into
# neighbouring ops or that share a scope and shape with another (matching by scope and shape
# would pick the wrong tensor: a block's ff_norm read 23.8 dB against torch's), and what the
# Python pipeline returns around the decoder.
_NOT_IN_GRAPH = (".input", ".to_q", ".to_kv", ".to_qkv", ".pre_norm", ".cross_attend_norm",
                 ".ff_norm", "relative_attention_bias", ".layer_norm", ".SelfAttention",
                 ".DenseReluDense", ".layer.0", ".layer.1", ".embed_tokens", ".final_layer_norm")


def observable(name: str) -> bool:
    """Is `name` one the LiteRT recording finds (every such name must be found)?"""
    return ("@" not in name and not name.endswith(_NOT_IN_GRAPH)
            and name not in (prefixes.VAE, "output.audio"))


def record(model, inputs: Inputs, torch_tensors: "OrderedDict[str, np.ndarray]",
           workdir: str | Path, *, steps: int, sampler: str,
           max_length: int) -> "OrderedDict[str, np.ndarray]":
    """LiteRT recording with the torch recording's names: boundaries for every step, and the
    intermediates the torch recorder took (DiT at the first step, decoder, T5) where a TFLite
    tensor of the same scope and shape exists. Returns tensors in torch's order."""
    frames = inputs.noise.shape[-1]
    paths, maps = export(model, workdir, frames, max_length)
    pipe = Pipeline(paths, preserve_all=True)
    wanted = {name: (1, *a.shape[1:]) for name, a in torch_tensors.items()
              if not name.startswith(("input.", "sampler.")) and observable(name)}
    per_item: dict[str, list[np.ndarray]] = {}

    def on_call(stage, b, step):
        if stage == "dit" and step != 0:
            return  # the torch recording holds DiT intermediates of the first step
        found = pick_intermediates(pipe.models[stage].produced(), maps[stage], wanted,
                                   seq=(max_length, T5_TOKENS) if stage == "conditioners" else None)
        for name, value in found.items():
            per_item.setdefault(name, []).append(value)

    tensors = run_pipeline(pipe, inputs, steps=steps, sampler=sampler, on_call=on_call)
    cross = tensors["conditioner.cross_attn_cond"]
    # The conditioner outputs are the two parts of the (exact) concatenation.
    tensors[prefixes.PROMPT] = cross[:, :max_length]
    tensors[prefixes.SECONDS] = cross[:, max_length:]
    tensors[prefixes.DIT] = tensors["sampler.steps.0.v"]  # the DiT's output at the first step
    for name, parts in per_item.items():
        if name not in tensors and len(parts) == inputs.batch:
            tensors[name] = np.concatenate(parts, axis=0)
    return OrderedDict((k, tensors[k]) for k in torch_tensors if k in tensors)
