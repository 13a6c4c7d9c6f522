"""The committed `tiny-trained` checkpoint: the tiny model trained on real music by
tools/train_tiny (official stable-audio-tools code), in the official layout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from harness.errors import BadInput


def trained_checkpoint() -> Path:
    path = Path(str(resources.files("harness.weights.data").joinpath("tiny-trained")))
    if not (path / "model.safetensors").is_file():
        raise BadInput(path, "the trained tiny checkpoint is missing (tools/train_tiny makes it)")
    return path
