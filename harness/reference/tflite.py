"""Run a three-file LiteRT (TFLite) deployment of the model: ours or Arm's.

Files (Arm's split): conditioners (input_ids, attention_mask int64 (1,128), seconds_total (1,)
-> cross (1,65,d), cross masks (1,65), global (1,d)), DiT (x (1,C,T), t (1,), cross, global
-> v (1,C,T)) and autoencoder (latents (1,C,T) -> planar audio (2,N)). Inputs are bound by
name and shape, never by index: Arm's DiT input order changed between export versions, and an
older export lost the global input (refused here). Batch items run one at a time (batch-1
signatures); the pingpong/euler update between DiT calls is the sampler's float32 arithmetic,
in the same operation order as `stable_audio_tools.inference.sampling`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.golden.inputs import Inputs
from harness.model import prefixes
from harness.weights.tflite.extract import ARM_FILES

T5_TOKENS = 128  # Arm's conditioner runs T5 on 128 tokens and keeps the first 64

# Role -> name fragments that identify an input/output across export versions.
HINTS = {
    "input_ids": ("input_ids",), "attention_mask": ("attention_mask",),
    "seconds_total": ("seconds",),
    "x": ("x", "latent", "sample"), "t": ("t", "timestep", "time", "sigma"),
    "cross_attn_cond": ("cross",), "global_cond": ("global",),
}


def sampler_schedule(steps: int) -> np.ndarray:
    """sample_rf's t: sigmoid(-linspace(-6, 2, steps+1)), t[0]=1, t[-1]=0, computed by torch in
    float32 exactly as the package does (a float64 sigmoid can differ in the last bit)."""
    import torch

    t = torch.sigmoid(-torch.linspace(-6, 2, steps + 1))
    t[0], t[-1] = 1.0, 0.0
    return t.numpy()


def _short(name: str) -> str:
    """'serving_default_cross_attn_cond:0' -> 'cross_attn_cond'."""
    name = name.split(":")[0]
    for prefix in ("serving_default_",):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name.lower()


def bind(details: list[dict], wanted: dict[str, tuple[int, ...]], path: Path) -> dict[str, dict]:
    """Map each role to one tensor detail: an exact (short) name, then a name fragment, then a
    unique shape. Anything ambiguous or missing is BadInput naming the file."""
    left = list(details)
    out: dict[str, dict] = {}
    for how in ("exact", "fragment", "shape"):
        for role, shape in wanted.items():
            if role in out:
                continue
            cands = [d for d in left if tuple(d["shape"]) == tuple(shape)]
            if how == "exact":
                cands = [d for d in cands if _short(d["name"]) in (role, *HINTS.get(role, ()))]
            elif how == "fragment":
                cands = [d for d in cands
                         if any(h in _short(d["name"]).split("_") or
                                (len(h) > 2 and h in _short(d["name"]))
                                for h in HINTS.get(role, (role,)))]
            if len(cands) == 1:
                out[role] = cands[0]
                left.remove(cands[0])
    missing = [r for r in wanted if r not in out]
    if missing:
        have = ", ".join(f"{d['name']}{list(d['shape'])}" for d in details)
        raise BadInput(path, f"cannot bind {missing[0]} {tuple(wanted[missing[0]])} by name or "
                             f"shape (tensors: {have})")
    return out


@dataclass
class TFLiteModel:
    path: Path
    interpreter: object
    preserve: bool

    @classmethod
    def open(cls, path: str | Path, preserve_all: bool = False) -> "TFLiteModel":
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        path = Path(path)
        if not path.is_file():
            raise BadInput(path, "missing")
        kwargs = {}
        if preserve_all:
            # Delegated partitions do not keep their intermediates: reference kernels only.
            kwargs = dict(experimental_preserve_all_tensors=True,
                          experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        try:
            it = Interpreter(model_path=str(path), **kwargs)
            it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise BadInput(path, f"not a loadable TFLite model ({e})") from None
        return cls(path, it, preserve_all)

    def inputs(self) -> list[dict]:
        return self.interpreter.get_input_details()

    def outputs(self) -> list[dict]:
        return self.interpreter.get_output_details()

    def run(self, feeds: dict[int, np.ndarray]) -> None:
        for index, value in feeds.items():
            self.interpreter.set_tensor(index, value)
        self.interpreter.invoke()

    def get(self, index: int) -> np.ndarray:
        return np.array(self.interpreter.get_tensor(index), copy=True)

    def produced(self) -> list[tuple[int, str, np.ndarray]]:
        """(tensor index, name, value) of every op output, in execution order."""
        out = []
        details = {d["index"]: d for d in self.interpreter.get_tensor_details()}
        for op in self.interpreter._get_ops_details():
            for idx in op["outputs"]:
                if idx < 0:
                    continue
                try:
                    value = self.interpreter.get_tensor(int(idx))
                except ValueError:  # tensor freed or never materialised
                    continue
                out.append((int(idx), details[int(idx)]["name"], np.array(value, copy=True)))
        return out


class Pipeline:
    """Three TFLite models bound to their roles."""

    def __init__(self, files: dict[str, Path], preserve_all: bool = False):
        self.models = {k: TFLiteModel.open(p, preserve_all) for k, p in files.items()}

    @classmethod
    def from_dir(cls, root: str | Path, preserve_all: bool = False) -> "Pipeline":
        root = Path(root)
        if not root.is_dir():
            raise BadInput(root, "TFLite directory does not exist")
        return cls({k: root / f for k, f in ARM_FILES.items()}, preserve_all)

    def latent_shape(self) -> tuple[int, ...]:
        """(1, C, T) from the autoencoder's single input: the DiT's x has the same shape."""
        m = self.models["autoencoder"]
        ins = m.inputs()
        if len(ins) != 1 or len(ins[0]["shape"]) != 3:
            raise BadInput(m.path, f"autoencoder inputs {[list(d['shape']) for d in ins]} are "
                                   "not one (1, C, T) latent")
        return tuple(int(d) for d in ins[0]["shape"])

    def conditioners(self, ids: np.ndarray, mask: np.ndarray, seconds: np.float32):
        m = self.models["conditioners"]
        n = ids.shape[-1]
        ins = bind(m.inputs(), {"input_ids": (1, T5_TOKENS), "attention_mask": (1, T5_TOKENS),
                                "seconds_total": (1,)}, m.path)
        pad = np.zeros((1, T5_TOKENS), dtype=np.int64)
        ids128, mask128 = pad.copy(), pad.copy()
        ids128[0, :n], mask128[0, :n] = ids, mask
        feeds = {ins["input_ids"]["index"]: ids128.astype(ins["input_ids"]["dtype"]),
                 ins["attention_mask"]["index"]: mask128.astype(ins["attention_mask"]["dtype"]),
                 ins["seconds_total"]["index"]: np.asarray([seconds], dtype=np.float32)}
        m.run(feeds)
        outs = m.outputs()
        cross = [d for d in outs if len(d["shape"]) == 3]
        glob = [d for d in outs if len(d["shape"]) == 2 and "mask" not in _short(d["name"])]
        if len(cross) != 1 or not glob:
            raise BadInput(m.path, "conditioner outputs are not (1,65,d) cross + (1,d) global")
        glob = [d for d in glob if d["shape"][-1] == cross[0]["shape"][-1]]
        return m.get(cross[0]["index"]).astype(np.float32), m.get(glob[0]["index"]).astype(np.float32)

    def dit(self, x: np.ndarray, t: np.float32, cross: np.ndarray, glob: np.ndarray) -> np.ndarray:
        m = self.models["dit"]
        ins = bind(m.inputs(), {"x": x.shape, "t": (1,), "cross_attn_cond": cross.shape,
                                "global_cond": glob.shape}, m.path)
        m.run({ins["x"]["index"]: x, ins["t"]["index"]: np.asarray([t], dtype=np.float32),
               ins["cross_attn_cond"]["index"]: cross, ins["global_cond"]["index"]: glob})
        return m.get(m.outputs()[0]["index"]).astype(np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        m = self.models["autoencoder"]
        ins = m.inputs()
        if len(ins) != 1 or tuple(ins[0]["shape"]) != latents.shape:
            raise BadInput(m.path, f"autoencoder input {[list(d['shape']) for d in ins]} does "
                                   f"not take latents {list(latents.shape)}")
        m.run({ins[0]["index"]: latents})
        audio = m.get(m.outputs()[0]["index"]).astype(np.float32)
        if audio.ndim == 3 and audio.shape[0] == 1:
            audio = audio[0]
        if audio.ndim != 2 or audio.shape[0] != 2:
            raise BadInput(m.path, f"audio output {list(audio.shape)} is not planar (2, N)")
        return audio


def run_pipeline(pipe: Pipeline, inputs: Inputs, *, steps: int, sampler: str,
                 on_call=None) -> "OrderedDict[str, np.ndarray]":
    """Boundary tensors (same names as the torch recorder) for every batch item.

    on_call(stage, b, step) is called after each model invocation (for intermediates)."""
    if sampler not in ("pingpong", "euler"):
        raise ValueError(f"sampler must be pingpong or euler, not {sampler!r}")
    t = sampler_schedule(steps)
    per_item: list[OrderedDict] = []
    for b in range(inputs.batch):
        rec: OrderedDict[str, np.ndarray] = OrderedDict()
        cross, glob = pipe.conditioners(inputs.input_ids[b], inputs.attention_mask[b],
                                        inputs.seconds_total[b])
        if on_call:
            on_call("conditioners", b, None)
        rec["conditioner.cross_attn_cond"], rec["conditioner.global_cond"] = cross, glob
        x = inputs.noise[b: b + 1].copy()
        for i in range(steps):
            v = pipe.dit(x, t[i], cross, glob)
            if on_call:
                on_call("dit", b, i)
            rec[f"sampler.steps.{i}.v"] = v
            if sampler == "pingpong":
                denoised = x - t[i] * v
                x = (np.float32(1) - t[i + 1]) * denoised + t[i + 1] * inputs.step_noise[i, b: b + 1]
                rec[f"sampler.steps.{i}.denoised"] = denoised
            else:
                x = x + (t[i + 1] - t[i]) * v
            rec[f"sampler.steps.{i}.x"] = x.astype(np.float32)
        audio = pipe.decode(x)
        if on_call:
            on_call("autoencoder", b, None)
        rec[prefixes.DECODER] = audio[None]
        per_item.append(rec)
    out: OrderedDict[str, np.ndarray] = OrderedDict(inputs.tensors())
    for name in per_item[0]:
        out[name] = np.concatenate([r[name] for r in per_item], axis=0)
    out["sampler.t"] = t
    return out
