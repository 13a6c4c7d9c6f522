"""Record named intermediates of the official PyTorch pipeline on injected inputs.

The pipeline is the package's own code path, called the way `generate_diffusion_cond` calls it:
`model.conditioner(...)` -> `model.get_conditioning_inputs` -> `sample_rf(model.model, ...)`
-> `model.pretransform.decode`. We only (1) hand the T5 conditioner token ids through a
tokenizer stand-in, (2) replace `torch.randn_like` during sampling by the stored per-step noise,
(3) observe with forward hooks and a wrapper around `apply_rotary_pos_emb`.

Names are official module paths with the full state-dict prefix, values in torch layout:
  conditioner.conditioners.prompt.model[.encoder.block.{i}]   HF T5 (before padding zeroing)
  conditioner.conditioners.prompt / .seconds_total             conditioner outputs
  conditioner.cross_attn_cond / .global_cond                    what the DiT receives
  model.model.<module>                                          DiT intermediates, first step
  model.model.transformer.layers.{i}.self_attn.{q,k}_rotary     q, k after RoPE
  sampler.t, sampler.steps.{i}.{v,denoised,x}                   every step (x: after step i)
  pretransform.model.decoder[.layers.{j}[.layers.{k}]]          VAE decoder, final audio

detail: "all" records every name above; "boundaries" only conditioner outputs, sampler steps
and the decoded audio; "dit" adds the T5 blocks and the DiT intermediates to the boundaries
(no decoder internals, no RoPE taps): the per-layer tensors of the full-size model that fit a
golden (the decoder's internals at 32 full-size frames would take ~300 MB).
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

import numpy as np
import torch

from harness.reference.build import t5_model
from harness.reference.inputs import Inputs
from harness.reference.tflite import sampler_schedule

os.environ.setdefault("ENABLE_TORCH_COMPILE", "0")  # the package's @compile must stay off

DETAILS = ("all", "boundaries", "dit")


class Tape:
    """Tensors by name in first-seen order; repeated names are concatenated on the batch axis
    (the decoder runs once per batch item: `iterate_batch`)."""

    def __init__(self):
        self.parts: OrderedDict[str, list[np.ndarray]] = OrderedDict()
        self.enabled = True

    def put(self, name: str, value) -> None:
        if not self.enabled:
            return
        if isinstance(value, (tuple, list)):
            value = value[0]
        if hasattr(value, "last_hidden_state"):
            value = value.last_hidden_state
        arr = value.detach().to("cpu")
        arr = arr.float().numpy() if arr.is_floating_point() else arr.numpy()
        self.parts.setdefault(name, []).append(np.array(arr, copy=True))

    def tensors(self) -> OrderedDict[str, np.ndarray]:
        return OrderedDict((k, v[0] if len(v) == 1 else np.concatenate(v, axis=0))
                           for k, v in self.parts.items())


def dit_module_names(depth: int, detail: str) -> list[str]:
    """DiffusionTransformer submodules to hook (relative names; '' is the DiT itself)."""
    if detail not in ("all", "dit"):
        return []
    names = ["to_cond_embed", "to_global_embed", "timestep_features", "to_timestep_embed",
             "preprocess_conv", "transformer.project_in"]
    for i in range(depth):
        b = f"transformer.layers.{i}"
        names += [f"{b}.self_attn.q_norm", f"{b}.self_attn.k_norm", f"{b}.self_attn",
                  f"{b}.cross_attn.q_norm", f"{b}.cross_attn.k_norm", f"{b}.cross_attn",
                  f"{b}.ff", b]
    return names + ["transformer.project_out", "postprocess_conv"]


def decoder_module_names(decoder: torch.nn.Module, detail: str) -> list[str]:
    if detail != "all":
        return []
    names = []
    for j, layer in enumerate(decoder.layers):
        if isinstance(layer, torch.nn.Identity):
            continue
        names.append(f"layers.{j}")
        if hasattr(layer, "layers"):  # DecoderBlock: snake, upsample, 3 residual units
            names += [f"layers.{j}.layers.{k}" for k in range(len(layer.layers))]
    return names


@contextlib.contextmanager
def _hooks(tape: Tape, root: torch.nn.Module, prefix: str, names: list[str]):
    modules = dict(root.named_modules())
    handles = []
    for rel in names:
        full = f"{prefix}.{rel}" if rel else prefix
        handles.append(modules[rel].register_forward_hook(
            lambda mod, args, out, full=full: tape.put(full, out)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _rotary_capture(tape: Tape, dit: torch.nn.Module, prefix: str):
    """Record q and k right after RoPE: wrap the module-level function Attention.forward calls,
    attributing calls to the attention module running at the time (q first, then k)."""
    import stable_audio_tools.models.transformer as tr

    current: list = [None, 0]
    handles = []
    for name, mod in dit.named_modules():
        if isinstance(mod, tr.Attention) and name.endswith("self_attn"):
            def pre(mod, args, name=name):
                current[0], current[1] = f"{prefix}.{name}", 0
            handles.append(mod.register_forward_pre_hook(pre))
            handles.append(mod.register_forward_hook(lambda *a: current.__setitem__(0, None)))
    original = tr.apply_rotary_pos_emb

    def wrapped(t, freqs, *args, **kwargs):
        out = original(t, freqs, *args, **kwargs)
        if current[0] is not None:
            tape.put(f"{current[0]}.{('q_rotary', 'k_rotary')[current[1]]}", out)
            current[1] += 1
        return out

    tr.apply_rotary_pos_emb = wrapped
    try:
        yield
    finally:
        tr.apply_rotary_pos_emb = original
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _injected_noise(step_noise: torch.Tensor):
    """The sampler's `torch.randn_like(x)` returns the stored noise of the current step."""
    queue = list(step_noise)
    original = torch.randn_like

    def randn_like(x, *args, **kwargs):
        if not queue:
            raise RuntimeError("sampler drew more noise than the recording injected")
        n = queue.pop(0)
        if tuple(n.shape) != tuple(x.shape):
            raise RuntimeError(f"injected noise {tuple(n.shape)} does not fit {tuple(x.shape)}")
        return n.to(dtype=x.dtype).clone()

    torch.randn_like = randn_like
    try:
        yield queue
    finally:
        torch.randn_like = original


def set_token_ids(model: torch.nn.Module, inputs: Inputs) -> None:
    tok = model.conditioner.conditioners["prompt"].tokenizer
    tok.input_ids = torch.from_numpy(inputs.input_ids)
    tok.attention_mask = torch.from_numpy(inputs.attention_mask)


def conditioning(model, inputs: Inputs, tape: Tape, detail: str) -> dict:
    """Official conditioners + glue; returns the DiT keyword inputs (cross/global cond...)."""
    set_token_ids(model, inputs)
    t5 = t5_model(model)
    t5_names = [] if detail == "boundaries" else \
        [f"encoder.block.{i}" for i in range(len(t5.encoder.block))]
    metadata = [{"prompt": "", "seconds_total": float(s)} for s in inputs.seconds_total]
    with _hooks(tape, t5, "conditioner.conditioners.prompt.model", t5_names + [""]), \
            _hooks(tape, model.conditioner.conditioners, "conditioner.conditioners",
                   ["prompt", "seconds_total"]):
        cond = model.conditioner(metadata, "cpu")
    inputs_ = model.get_conditioning_inputs(cond)
    dtype = next(model.model.parameters()).dtype
    inputs_ = {k: v.type(dtype) if v is not None else v for k, v in inputs_.items()}
    tape.put("conditioner.cross_attn_cond", inputs_["cross_attn_cond"])
    tape.put("conditioner.global_cond", inputs_["global_cond"])
    return inputs_


@torch.no_grad()
def record(model, inputs: Inputs, *, steps: int = 8, sampler: str = "pingpong",
           cfg_scale: float = 1.0, detail: str = "all") -> OrderedDict[str, np.ndarray]:
    """Run conditioners -> sampler -> decoder on `inputs`; return name -> array in run order."""
    from stable_audio_tools.inference.sampling import sample_rf

    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}, not {detail!r}")
    if sampler not in ("pingpong", "euler"):
        raise ValueError(f"sampler must be pingpong or euler, not {sampler!r}")
    if inputs.step_noise.shape[0] != steps:
        raise ValueError(f"{inputs.step_noise.shape[0]} step noises for {steps} steps")
    tape = Tape()
    for k, v in inputs.tensors().items():
        tape.parts[k] = [v]

    cond_inputs = conditioning(model, inputs, tape, detail)

    dit = model.model.model  # ConditionedDiffusionModelWrapper.model (DiTWrapper).model
    v_per_step: list[torch.Tensor] = []
    dit_hook = dit.register_forward_hook(lambda m, a, out: v_per_step.append(out.detach().clone()))
    xs: list[torch.Tensor] = []
    denoised: list[torch.Tensor] = []

    def callback(info):
        xs.append(info["x"].detach().clone())
        denoised.append(info["denoised"].detach().clone())
        tape.enabled = False  # DiT intermediates: first step only (same function every step)

    noise = torch.from_numpy(inputs.noise.copy())
    with _hooks(tape, dit, "model.model", dit_module_names(len(dit.transformer.layers), detail)
                + ([""] if detail != "boundaries" else [])), \
            (_rotary_capture(tape, dit, "model.model") if detail == "all"
             else contextlib.nullcontext()), \
            _injected_noise(torch.from_numpy(inputs.step_noise.copy())) as left:
        try:
            out = sample_rf(dit_wrapper(model), noise, steps=steps, sampler_type=sampler,
                            sigma_max=1.0, device="cpu", callback=callback, cfg_scale=cfg_scale,
                            **cond_inputs)
        finally:
            dit_hook.remove()
            tape.enabled = True
    if sampler == "pingpong" and left:
        raise RuntimeError(f"sampler used {steps - len(left)} of {steps} injected noises")
    if len(v_per_step) != steps:
        raise RuntimeError(f"DiT ran {len(v_per_step)} times for {steps} steps")

    tape.parts["sampler.t"] = [sampler_schedule(steps)]
    # pingpong's callback sees x before its step, euler's the x after it.
    after = xs[1:] + [out] if sampler == "pingpong" else xs
    if not torch.equal(after[-1], out):
        raise RuntimeError("sampler callback order is not the one this recorder knows")
    for i in range(steps):
        tape.put(f"sampler.steps.{i}.v", v_per_step[i])
        if sampler == "pingpong":
            tape.put(f"sampler.steps.{i}.denoised", denoised[i])
        tape.put(f"sampler.steps.{i}.x", after[i])

    decoder = model.pretransform.model.decoder
    with _hooks(tape, decoder, "pretransform.model.decoder",
                decoder_module_names(decoder, detail) + [""]):
        model.pretransform.decode(out)
    return tape.tensors()


def dit_wrapper(model):
    """What generate_diffusion_cond hands the sampler: the DiTWrapper (`model.model`)."""
    return model.model
