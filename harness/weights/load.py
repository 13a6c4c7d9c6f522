"""Open a checkpoint (directory or model.safetensors), validate it strictly, build the model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.files import open_regular, read_json_object, regular_file
from harness.model import prefixes
from harness.model.config import ConfigError, ModelConfig, T5Config
from harness.weights.convert import fuse_weight_norm, official_to_mlx
from harness.weights.safetensors_io import (dtype_names, iter_safetensors, read_header,
                                            read_safetensors)
from harness.weights.validate import (T5_TIED, expected_checkpoint, expected_t5, problems,
                                      raise_problems, untie_t5)

T5_PREFIX = prefixes.T5 + "."  # T5 weights sit under the prompt conditioner


@dataclass(frozen=True)
class Checkpoint:
    root: Path
    model_file: Path
    config: ModelConfig
    t5_dir: Path | None  # holds config.json, model.safetensors, spiece.model

    @property
    def spiece(self) -> Path | None:
        return self.t5_dir / "spiece.model" if self.t5_dir else None


def open_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint directory, or a model.safetensors with model_config.json beside it."""
    path = Path(path)
    if path.is_dir():
        root, model_file = path, path / "model.safetensors"
        if not model_file.exists() and not model_file.is_symlink():
            raise BadInput(path, "no model.safetensors in this directory")
    elif path.exists():
        root, model_file = path.parent, path
    else:
        raise BadInput(path, "no such file or directory")
    regular_file(model_file, "safetensors file")  # a FIFO or device is refused, never opened
    t5_dir = root / "t5" if (root / "t5").is_dir() else None
    t5_cfg = t5_config(t5_dir) if t5_dir else T5Config()
    cfg_path = root / "model_config.json"
    raw = read_json_object(cfg_path, "stable-audio-tools model config")
    try:
        config = ModelConfig.from_official(raw, t5_cfg)
    except ConfigError as e:
        raise BadInput(cfg_path, f"not a usable stable-audio-tools model config: {e}") from None
    return Checkpoint(root, model_file, config, t5_dir)


def t5_config(t5_dir: Path) -> T5Config:
    path = t5_dir / "config.json"
    try:
        return T5Config.from_hf(read_json_object(path, "Hugging Face T5 config"))
    except ConfigError as e:
        raise BadInput(path, f"not a usable T5 config: {e}") from None


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open_regular(path) as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    header, _, _ = read_header(path)
    return {k: tuple(v["shape"]) for k, v in header.items()}


def load_official(ckpt: Checkpoint) -> dict[str, np.ndarray]:
    """model.safetensors tensors after checking the key set, shapes, dtypes and values."""
    path = ckpt.model_file
    raise_problems(path, problems(path, _shapes(path), dtype_names(path),
                                  expected_checkpoint(ckpt.config)))
    return read_safetensors(path)


def _checked_t5(ckpt: Checkpoint) -> Path:
    """The T5 weights file, its header validated."""
    if ckpt.t5_dir is None:
        raise BadInput(ckpt.root, "no t5/ directory (T5 encoder config.json, model.safetensors, "
                                  "spiece.model) beside the checkpoint")
    path = ckpt.t5_dir / "model.safetensors"
    raise_problems(path, problems(path, _shapes(path), dtype_names(path),
                                  expected_t5(ckpt.config.t5), optional=(T5_TIED,)))
    return path


def load_t5(ckpt: Checkpoint) -> dict[str, np.ndarray]:
    path = _checked_t5(ckpt)
    try:
        return untie_t5(read_safetensors(path))
    except ValueError as e:
        raise BadInput(path, str(e)) from None


def mlx_weights(ckpt: Checkpoint, with_t5: bool = True) -> dict[str, np.ndarray]:
    """Validated weights in MLX layout, weight norm fused, T5 under its model path."""
    weights = fuse_weight_norm(official_to_mlx(load_official(ckpt), ckpt.config))
    if with_t5:
        weights.update({T5_PREFIX + k: v for k, v in load_t5(ckpt).items()})
    return weights


def iter_mlx_weights(ckpt: Checkpoint, convert):
    """(MLX name, convert(array)) one tensor at a time, the checks of `mlx_weights`: the
    headers are validated before any data is read, each tensor is re-laid out (a weight-norm
    pair fused when both halves are in) and handed to `convert` (e.g. to an mx.array) before
    the next is read. Peak memory is the converted model plus one tensor, not three copies."""
    path = ckpt.model_file
    raise_problems(path, problems(path, _shapes(path), dtype_names(path),
                                  expected_checkpoint(ckpt.config)))
    halves: dict[str, np.ndarray] = {}
    for key, w in iter_safetensors(path):
        if key.endswith((".weight_g", ".weight_v")):
            module = key.rsplit(".", 1)[0]
            halves[key] = w
            pair = {k: halves.get(f"{module}.{k}") for k in ("weight_g", "weight_v")}
            if any(v is None for v in pair.values()):
                continue
            group = {f"{module}.{k}": halves.pop(f"{module}.{k}") for k in pair}
        else:
            group = {key: w}
        del w
        for name, v in fuse_weight_norm(official_to_mlx(group, ckpt.config)).items():
            yield name, convert(v)
        del group
    for key, w in halves.items():  # an unpaired half: the strict load names it
        yield key, convert(w)
    t5_path = _checked_t5(ckpt)
    t5 = {k: convert(v) for k, v in iter_safetensors(t5_path)}
    try:
        t5 = untie_t5(t5)
    except ValueError as e:
        raise BadInput(t5_path, str(e)) from None
    for k, v in t5.items():
        yield T5_PREFIX + k, v


def load_model(path: str | Path, dtype=None):
    """-> (StableAudio with every weight loaded strictly, Checkpoint). Every weight is cast to
    `dtype` (default float32), and the model computes in it: each component casts its inputs
    to its weights' dtype (the official half-precision path; what stays float32 is listed at
    the FP16 policy in harness/golden/tolerances.py). Tensors are read and converted one at a
    time (`iter_mlx_weights`)."""
    import mlx.core as mx

    from harness.model.pipeline import StableAudio

    dtype = dtype or mx.float32

    def to_mx(v: np.ndarray):
        a = mx.array(v).astype(dtype)
        mx.eval(a)  # materialized now, so the numpy source can go
        return a

    ckpt = open_checkpoint(path)
    model = StableAudio(ckpt.config)
    model.load_weights(list(iter_mlx_weights(ckpt, to_mx)), strict=True)
    mx.eval(model.parameters())
    return model, ckpt
