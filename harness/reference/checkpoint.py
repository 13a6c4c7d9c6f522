"""Read a checkpoint directory (torch-free): configs, tensors as numpy, and content hashes.

Layout (written by `harness.weights.synth.write_checkpoint` or taken from a real release):
    model_config.json        official stable-audio-tools config
    model.safetensors        official state-dict names (DiT + conditioner fp32, VAE fp16)
    t5/config.json           Hugging Face T5 config
    t5/model.safetensors     T5EncoderModel names (`encoder.embed_tokens.weight` may be absent:
                             it is tied to `shared.weight`)
    t5/spiece.model          tokenizer (not needed: recordings take token ids)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import BadInput

T5_TIED_KEY = "encoder.embed_tokens.weight"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise BadInput(path, "missing")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BadInput(path, f"not valid JSON ({e})") from None


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise BadInput(path, "missing")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises several types for a damaged file
        raise BadInput(path, f"not a readable safetensors file ({e})") from None
    for name, t in tensors.items():
        if t.dtype.kind == "f" and not np.isfinite(t).all():
            raise BadInput(path, f"tensor {name} has non-finite values")
    return tensors


@dataclass
class Checkpoint:
    root: Path
    config: dict          # official model_config.json
    t5_config: dict       # HF T5 config.json
    weights: dict[str, np.ndarray]
    t5_weights: dict[str, np.ndarray]
    sha256: dict[str, str]  # relative file path -> sha256

    @property
    def preset(self) -> str:
        return self.config.get("sao_harness", {}).get("preset", "custom")


def read_checkpoint(root: str | Path) -> Checkpoint:
    root = Path(root)
    if not root.is_dir():
        raise BadInput(root, "checkpoint directory does not exist")
    files = ["model_config.json", "model.safetensors", "t5/config.json", "t5/model.safetensors"]
    config = _read_json(root / files[0])
    weights = _read_tensors(root / files[1])
    t5_config = _read_json(root / files[2])
    t5_weights = _read_tensors(root / files[3])
    if root.joinpath("t5/spiece.model").is_file():
        files.append("t5/spiece.model")
    sha = {f: file_sha256(root / f) for f in files}
    return Checkpoint(root, config, t5_config, weights, t5_weights, sha)
