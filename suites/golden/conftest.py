"""Fixtures of the golden suites: the committed tiny-torch golden and the tiny model it was
recorded from, each loaded once per module."""

from __future__ import annotations

import pytest

from harness.golden.store import DEFAULT_ROOT, Golden, load_golden

CASE = "tiny-torch"


@pytest.fixture(scope="module")
def golden() -> Golden:
    if not (DEFAULT_ROOT / CASE).is_dir():
        pytest.fail(f"missing: committed golden {DEFAULT_ROOT / CASE}")
    return load_golden(CASE, DEFAULT_ROOT)


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    from harness.weights.load import load_model

    return load_model(tiny_checkpoint)
