"""The committed `tiny-trained` checkpoint: the tiny model trained on real music by
tools/train_tiny (official stable-audio-tools code), in the official layout.

Its files' sha256 are pinned here, so a truncated copy or a Git LFS pointer in their place is
refused by name instead of loading as other weights."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from harness.errors import BadInput

SHA256 = {
    "model.safetensors": "ce20fc66783300069c9074ed32f81cad0f0df8cc4980233876b59e916f083230",
    "t5/model.safetensors": "85d584b107ca290c1675432e5f4a07aa86674684103fcdbb8348620027c42b43",
}


def trained_checkpoint() -> Path:
    """The committed checkpoint directory, its files checked against SHA256."""
    return verified(Path(str(resources.files("harness.weights.data").joinpath("tiny-trained"))))


def verified(path: Path) -> Path:
    """`path` if it holds the trained weights byte for byte, else BadInput naming the file."""
    if not (path / "model.safetensors").is_file():
        raise BadInput(path, "the trained tiny checkpoint is missing (tools/train_tiny makes it)")
    for name, expected in SHA256.items():
        if not (path / name).is_file():
            raise BadInput(path / name, "missing from the trained tiny checkpoint")
        actual = hashlib.sha256((path / name).read_bytes()).hexdigest()
        if actual != expected:
            raise BadInput(path / name, f"sha256 {actual[:16]}... is not the committed trained "
                                        f"weights' {expected[:16]}...")
    return path
