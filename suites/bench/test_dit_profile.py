"""tools/dit_profile/profile.py on the tiny DiT: every op kind it claims to time is reached
and every linear layer is counted once, so a renamed model function cannot silently drop a
kind from the profile (its README numbers would then hide time in `glue`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlx.nn as nn

from harness.model.config import preset
from harness.model.dit import DiffusionTransformer
from harness.model.layers import Linear

TOOL = Path(__file__).resolve().parents[2] / "tools" / "dit_profile" / "profile.py"
KINDS = {"linear", "layer norms", "q/k norms", "rope", "attention matmuls",
         "attention softmax", "glu gate", "silu", "1x1 convs", "fourier", "glue"}


def test_profile_reaches_every_kind_and_linear():
    out = subprocess.run([sys.executable, str(TOOL), "--config", "tiny", "--frames", "8",
                          "--rounds", "1", "--hot-seconds", "0"],
                         check=True, capture_output=True, text=True).stdout
    report = json.loads(out.splitlines()[-1])
    assert set(report["seconds"]) == KINDS, sorted(report["seconds"])
    assert all(v > 0 for v in report["seconds"].values()), report["seconds"]
    model = DiffusionTransformer(preset("tiny").dit)
    linears = sum(isinstance(m, Linear) for _, m in model.named_modules())
    assert report["linear_calls"] == linears
