"""Fixtures for the weight-gate suites: the approved tiny checkpoint (seed 0, whose goldens
are committed), a second seed, and `gate(...)`, an in-process gate run on short probes."""

from __future__ import annotations

from pathlib import Path

import pytest

# Drift probes of 64 latent frames keep a tiny gate run near a second; the audio checks
# need >= 512 tiny frames (32768 samples), so only tests that judge audio use more.
FRAMES = 64
AUDIO_FRAMES = 512


@pytest.fixture(scope="session")
def approved(tiny_checkpoint) -> Path:
    return tiny_checkpoint


@pytest.fixture(scope="session")
def seed1(tmp_path_factory) -> Path:
    from harness.weights.synth import write_checkpoint
    return write_checkpoint("tiny", 1, tmp_path_factory.mktemp("ckpt") / "tiny-seed1")


@pytest.fixture
def gate(golden_dir):
    """gate(candidate, baseline=None, expect=None, **Options fields) -> GateResult."""
    from harness.gate.runner import run_gate
    from harness.gate.stages import Options

    def run(candidate, baseline=None, expect=None, **kw):
        kw.setdefault("frames", FRAMES)
        kw.setdefault("golden_dir", golden_dir)
        expect = expect or ("same" if baseline is not None else "update")
        return run_gate(Options(Path(candidate), baseline and Path(baseline), expect, **kw))
    return run
