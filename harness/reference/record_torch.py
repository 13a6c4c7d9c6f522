"""Record named intermediates of the official PyTorch pipeline on injected inputs.

The pipeline is the package's own code path, called the way `generate_diffusion_cond` calls it:
`model.conditioner(...)` -> `model.get_conditioning_inputs` -> `sample_rf(model.model, ...)`
-> `model.pretransform.decode`. We only (1) hand the T5 conditioner token ids through a
tokenizer stand-in, (2) replace `torch.randn_like` during sampling by the stored per-step noise,
(3) observe with forward hooks and a wrapper around `apply_rotary_pos_emb`.

Names are official module paths with the full state-dict prefix, values in torch layout:
  conditioner.conditioners.prompt.model[.encoder.embed_tokens|.encoder.block.{i}[.layer...]]
                                                                HF T5 (before padding zeroing):
                                                                embedding, every sublayer, the
                                                                position bias table, final norm
  conditioner.conditioners.prompt / .seconds_total             conditioner outputs
  conditioner.cross_attn_cond / .global_cond                    what the DiT receives
  model.model.<module>[@{i}]                                    DiT intermediates at sampler
                                                                step i (no suffix: step 0)
  model.model.cfg[@{i}]                                         CFG-combined v (cfg != 1; then
                                                                `model.model` is the 2B batch)
  <module>.input                                                a module's input, recorded with
                                                                a pre-hook: the assembled token
                                                                sequence (layers.0), residual
                                                                stream states (cross_attend_norm,
                                                                ff_norm), the decoder's latents
  model.model.transformer.layers.{i}.self_attn.{q,k}_rotary     q, k after RoPE
  sampler.t, sampler.steps.{i}.{v,denoised,x}                   every step (x: after step i)
  pretransform.model.decoder[.layers.{j}[.layers.{k}]]          VAE decoder
  pretransform.model                                            `decode_audio` (where chunking
                                                                would stitch)
  output.audio                                                  what the pipeline returns

Every module runs on the reference's own recorded input when the MLX model is replayed
(harness.compare.divergence), so each recorded input here makes one more verdict "local".

detail: "all" records every name above; "long" the boundaries plus block 0's q/k path and the
decode's input and output; "dit" the boundaries plus the T5 blocks and the DiT intermediates
(no decoder internals, no RoPE taps: the per-layer tensors of the full-size model that fit a
golden; the decoder's internals at 32 full-size frames would take ~300 MB); "boundaries" only
conditioner outputs, sampler steps and the decoded audio.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict

import numpy as np
import torch

from harness.reference.build import t5_model
from harness.golden.inputs import Inputs
from harness.model import prefixes
from harness.reference.tflite import sampler_schedule

os.environ.setdefault("ENABLE_TORCH_COMPILE", "0")  # the package's @compile must stay off



class Tape:
    """Tensors by name in first-seen order; repeated names are concatenated on the batch axis
    (the decoder runs once per batch item: `iterate_batch`). `suffix` is appended to every
    name put while it is set (the sampler step of the DiT's intermediates)."""

    def __init__(self):
        self.parts: OrderedDict[str, list[np.ndarray]] = OrderedDict()
        self.enabled = True
        self.suffix = ""

    def put(self, name: str, value) -> None:
        if not self.enabled:
            return
        name += self.suffix
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


DETAILS = ("all", "long", "dit", "boundaries")


def dit_module_names(depth: int, detail: str) -> list[str]:
    """DiffusionTransformer submodules to hook (relative names). `long`: the attention path of
    block 0 (where positions enter), enough to localize a position bug on long inputs."""
    if detail == "boundaries":
        return []
    if detail == "long":
        b = "transformer.layers.0.self_attn"
        return [f"{b}.q_norm", f"{b}.k_norm"]
    names = ["to_cond_embed", "to_global_embed", "timestep_features", "to_timestep_embed",
             "preprocess_conv", "transformer.project_in"]
    for i in range(depth):
        b = f"transformer.layers.{i}"
        names += [f"{b}.pre_norm", f"{b}.self_attn.to_qkv", f"{b}.self_attn.q_norm",
                  f"{b}.self_attn.k_norm", f"{b}.self_attn",
                  f"{b}.cross_attend_norm", f"{b}.cross_attn.to_q", f"{b}.cross_attn.to_kv",
                  f"{b}.cross_attn.q_norm", f"{b}.cross_attn.k_norm", f"{b}.cross_attn",
                  f"{b}.ff_norm", f"{b}.ff", b]
    return names + ["transformer.project_out", "postprocess_conv"]


def dit_input_names(depth: int, detail: str) -> list[str]:
    """DiT submodules whose INPUT is recorded (`<name>.input`): what the DiT hands the
    transformer (after the preprocess residual), the assembled token sequence with the
    prepended global token, and the residual stream between the sublayers of each block."""
    if detail != "all":
        return []
    names = ["transformer", "transformer.layers.0"]
    for i in range(depth):
        names += [f"transformer.layers.{i}.cross_attend_norm", f"transformer.layers.{i}.ff_norm"]
    return names


def t5_module_names(depth: int, detail: str) -> list[str]:
    """T5EncoderModel submodules to hook: the embedding, every sublayer (norms, attention,
    residual sums, FF), the relative position bias table (block 0 owns it), the final norm."""
    if detail == "dit":
        return [f"encoder.block.{i}" for i in range(depth)]
    if detail != "all":
        return []
    names = ["encoder.embed_tokens", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias"]
    for i in range(depth):
        b = f"encoder.block.{i}"
        names += [f"{b}.layer.0.layer_norm", f"{b}.layer.0.SelfAttention", f"{b}.layer.0",
                  f"{b}.layer.1.layer_norm", f"{b}.layer.1.DenseReluDense", b]
    return names + ["encoder.final_layer_norm"]


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
def _hooks(tape: Tape, root: torch.nn.Module, prefix: str, names: list[str],
           inputs: tuple[str, ...] | list[str] = ()):
    """Forward hooks record each module's output under its path; pre-hooks record the first
    positional input of the modules in `inputs` as `<path>.input`."""
    modules = dict(root.named_modules())
    handles = []
    for rel in inputs:
        full = f"{prefix}.{rel}.input" if rel else f"{prefix}.input"
        handles.append(modules[rel].register_forward_pre_hook(
            lambda mod, args, full=full: tape.put(full, args[0])))
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
def _rotary_capture(tape: Tape, dit: torch.nn.Module, prefix: str, every_layer: bool = True):
    """Record q and k right after RoPE: wrap the module-level function Attention.forward calls,
    attributing calls to the attention module running at the time (q first, then k).
    every_layer False: block 0 only."""
    import stable_audio_tools.models.transformer as tr

    current: list = [None, 0]
    handles = []
    for name, mod in dit.named_modules():
        if isinstance(mod, tr.Attention) and name.endswith("self_attn") and \
                (every_layer or name == "transformer.layers.0.self_attn"):
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
    t5_names = t5_module_names(len(t5.encoder.block), detail)
    metadata = [{"prompt": "", "seconds_total": float(s)} for s in inputs.seconds_total]
    with _hooks(tape, t5, prefixes.T5, t5_names + [""]), \
            _hooks(tape, model.conditioner.conditioners, f"{prefixes.CONDITIONER}.conditioners",
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
           cfg_scale: float = 1.0, detail: str = "all",
           dit_steps: int | None = None) -> OrderedDict[str, np.ndarray]:
    """Run conditioners -> sampler -> decoder on `inputs`; return name -> array in run order.

    dit_steps: DiT intermediates at the first N sampler steps (default: every step)."""
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

    dit_steps = steps if dit_steps is None else dit_steps

    def callback(info):
        xs.append(info["x"].detach().clone())
        denoised.append(info["denoised"].detach().clone())
        # the DiT's intermediates of the next step get its index (MLX: capture.sampler_step)
        tape.suffix = f"@{len(xs)}"
        tape.enabled = len(xs) < dit_steps

    depth = len(dit.transformer.layers)
    noise = torch.from_numpy(inputs.noise.copy())
    tape.enabled = dit_steps > 0
    with _hooks(tape, dit, prefixes.DIT, dit_module_names(depth, detail),
                dit_input_names(depth, detail)), \
            _dit_outputs(tape, dit, prefixes.DIT, detail, cfg_scale), \
            (_rotary_capture(tape, dit, prefixes.DIT, every_layer=detail == "all")
             if detail in ("all", "long") else contextlib.nullcontext()), \
            _injected_noise(torch.from_numpy(inputs.step_noise.copy())) as left:
        try:
            out = sample_rf(dit_wrapper(model), noise, steps=steps, sampler_type=sampler,
                            sigma_max=1.0, device="cpu", callback=callback, cfg_scale=cfg_scale,
                            **cond_inputs)
        finally:
            dit_hook.remove()
            tape.enabled, tape.suffix = True, ""
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
    tape.parts = in_step_order(tape.parts)

    vae = model.pretransform.model
    decoder_names = decoder_module_names(vae.decoder, detail)
    if detail != "long":
        decoder_names.append("")
    with _hooks(tape, vae.decoder, prefixes.DECODER, decoder_names, [""]), \
            _method_output(tape, vae, "decode_audio", prefixes.VAE):
        audio = model.pretransform.decode(out)
    tape.put("output.audio", audio)  # what generate_diffusion_cond returns (pipeline.OUTPUT_AUDIO)
    return tape.tensors()


def _step_of(name: str) -> int | None:
    """Sampler step a sampling-time tensor belongs to (None: not one): DiT intermediates
    `model.model...[@i]`, `sampler.steps.i.*`; `sampler.t` with step 0's sampler tensors."""
    if name == "sampler.t":
        return 0
    if prefixes.part_of(name) == "dit":
        _, at, step = name.partition("@")
        return int(step) if at else 0
    if name.startswith("sampler.steps."):
        return int(name.split(".")[2])
    return None


def in_step_order(parts: OrderedDict) -> OrderedDict:
    """Execution order: the sampler's tensors of step i right after the DiT's of step i (they
    are put after sampling), so a first divergence at step i precedes everything of step i+1."""
    names = list(parts)
    spans = [i for i, n in enumerate(names) if _step_of(n) is not None]
    if not spans:
        return parts
    head, body = names[:spans[0]], names[spans[0]:spans[-1] + 1]
    ordered = sorted(body, key=lambda n: (_step_of(n), n.startswith("sampler.")))  # stable
    return OrderedDict((n, parts[n]) for n in head + ordered + names[spans[-1] + 1:])


@contextlib.contextmanager
def _method_output(tape: Tape, obj, method: str, name: str):
    """Record what obj.method returns (a method, not a module: no hook to attach)."""
    original = getattr(obj, method)

    def wrapped(*args, **kwargs):
        out = original(*args, **kwargs)
        tape.put(name, out)
        return out

    setattr(obj, method, wrapped)
    try:
        yield
    finally:
        delattr(obj, method)  # the instance attribute goes; the class's method is back


@contextlib.contextmanager
def _dit_outputs(tape: Tape, dit, prefix: str, detail: str, cfg_scale: float):
    """`model.model` is what `_forward` returns (the 2B batch, cond then uncond, under CFG);
    with CFG, `model.model.cfg` is the combined v that `forward` returns."""
    if detail not in ("all", "dit"):
        yield
        return
    with _method_output(tape, dit, "_forward", prefix):
        if cfg_scale == 1.0:
            yield
            return
        handle = dit.register_forward_hook(lambda m, a, out: tape.put(f"{prefix}.cfg", out))
        try:
            yield
        finally:
            handle.remove()


def dit_wrapper(model):
    """What generate_diffusion_cond hands the sampler: the DiTWrapper (`model.model`)."""
    return model.model
