"""What the reference suites need: the reference venv (skip, naming it, elsewhere) and the
small seeded inputs their recordings run on."""

from __future__ import annotations

import pytest

REFERENCE_ENV = ("needs the reference venv (torch 2.13 + stable-audio-tools 0.0.19 + litert-torch): "
                 "bash harness/reference/install_env.sh VENV, then VENV/bin/python -m pytest")


def require_torch():
    return pytest.importorskip("torch", reason=REFERENCE_ENV)


def small_inputs(ckpt, frames=16, steps=4, seed=0):
    from harness.golden.inputs import make_inputs

    return make_inputs(seed=seed, io_channels=ckpt.config["model"]["io_channels"], frames=frames,
                       steps=steps, max_length=64, vocab_size=ckpt.t5_config["vocab_size"],
                       lengths=(3, 64), seconds=(2.5, 300.0))
