"""Helpers for the robustness suite: run the CLI in-process (fast) or as a real process (for
signals, hangs and memory), and assert the bad-input contract on the result."""

from __future__ import annotations

import pytest

from suites.robustness.contract import copy_checkpoint


@pytest.fixture(scope="session")
def tiny_copy(tiny_checkpoint, tmp_path_factory):
    """copy() -> a fresh, writable copy of the tiny checkpoint to break."""
    root = tmp_path_factory.mktemp("robust")
    counter = iter(range(10**6))
    return lambda: copy_checkpoint(tiny_checkpoint, root / f"c{next(counter)}")
