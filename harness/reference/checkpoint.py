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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.files import read_json_object
from harness.weights.load import sha256_file
from harness.weights.safetensors_io import read_safetensors


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
    # The harness's strict readers: regular files only, pickles, truncation, overlaps and
    # NaN/Inf refused with the tensor named; BF16 widened to float32 (load_state_dict casts).
    config = read_json_object(root / files[0], "stable-audio-tools model config")
    weights = read_safetensors(root / files[1])
    t5_config = read_json_object(root / files[2], "Hugging Face T5 config")
    t5_weights = read_safetensors(root / files[3])
    if root.joinpath("t5/spiece.model").is_file():
        files.append("t5/spiece.model")
    sha = {f: sha256_file(root / f) for f in files}
    return Checkpoint(root, config, t5_config, weights, t5_weights, sha)
