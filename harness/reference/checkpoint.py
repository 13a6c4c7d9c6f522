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
from harness.weights.safetensors_io import read_safetensors

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
    # The harness's strict reader: refuses pickles, truncation, overlaps and NaN/Inf, and
    # names the tensor; BF16 is widened to float32 (load_state_dict casts to the module).
    return read_safetensors(path)


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
