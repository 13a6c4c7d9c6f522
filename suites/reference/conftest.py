"""Fixtures for the reference suites: they need the reference venv (torch, stable-audio-tools,
litert). Run them with `.venv-ref/bin/python -m pytest -m reference suites/reference`; elsewhere they skip
and say so."""

from __future__ import annotations

import pytest

import harness.reference  # noqa: F401  (pins MKL reproducibility before torch loads MKL)

REFERENCE_ENV = ("needs the reference venv (torch 2.13 + stable-audio-tools 0.0.19 + litert-torch): "
                 "bash harness/reference/install_env.sh VENV, then VENV/bin/python -m pytest")


def require_torch():
    return pytest.importorskip("torch", reason=REFERENCE_ENV)


@pytest.fixture(scope="session")
def tiny_reference(tiny_checkpoint):  # tiny_checkpoint: the root conftest's seeded synth
    require_torch()
    from harness.reference import foreign_blas_loaded
    from harness.reference.build import load_reference

    if foreign_blas_loaded():
        pytest.fail("OpenBLAS is preloaded (LD_PRELOAD): it replaces torch's MKL sgemm, so "
                    "recordings would not reproduce the goldens; run the reference suite with "
                    "`env -u LD_PRELOAD -u OPENBLAS_CORETYPE`")

    return load_reference(tiny_checkpoint)  # (model, Checkpoint)


def small_inputs(ckpt, frames=16, steps=4, seed=0):
    from harness.golden.inputs import make_inputs

    return make_inputs(seed=seed, io_channels=ckpt.config["model"]["io_channels"], frames=frames,
                       steps=steps, max_length=64, vocab_size=ckpt.t5_config["vocab_size"],
                       lengths=(3, 64), seconds=(2.5, 300.0))
