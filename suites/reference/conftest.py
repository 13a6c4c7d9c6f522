"""Fixtures for the reference suites: they need the reference venv (torch, stable-audio-tools,
litert). Run them with `.venv-ref/bin/python -m pytest -m reference suites/reference`; elsewhere they skip
and say so."""

from __future__ import annotations

import pytest

import harness.reference  # noqa: F401  (pins MKL reproducibility before torch loads MKL)
from suites.reference.needs import require_torch


@pytest.fixture(scope="session")
def tiny_reference(tiny_checkpoint):  # tiny_checkpoint: the plugin's seeded synth
    require_torch()
    from harness.reference import foreign_blas_loaded
    from harness.reference.build import load_reference

    if foreign_blas_loaded():
        pytest.fail("OpenBLAS is preloaded (LD_PRELOAD): it replaces torch's MKL sgemm, so "
                    "recordings would not reproduce the goldens; run the reference suite with "
                    "`env -u LD_PRELOAD -u OPENBLAS_CORETYPE`")

    return load_reference(tiny_checkpoint)  # (model, Checkpoint)
