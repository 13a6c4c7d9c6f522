"""The survey behind the real-music suites: clips checked in worker processes give the same
reports as the serial run, and a caller spawn cannot re-run (main read from stdin) runs
serially instead of failing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from harness.audio import corpus, survey


def _clips(n=2, seconds=0.8, sr=44100):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    return [corpus.Clip(f"synthetic/{k}", (0.1 * np.sin(2 * np.pi * (220 + 110 * k) * t)
                                          + 0.01 * rng.standard_normal((2, t.size)))
                        .astype(np.float32), sr) for k in range(n)]


@pytest.mark.nightly
def test_workers_give_the_serial_reports():
    clips = _clips()
    serial, parallel = survey.survey(clips, workers=1), survey.survey(clips, workers=2)
    assert serial.keys() == parallel.keys() and len(serial) == 2 * len(survey.variants(
        clips[0].audio, clips[0].sr))
    assert all(serial[k].to_dict() == parallel[k].to_dict() for k in serial)


def test_main_from_stdin_is_not_spawnable(monkeypatch):
    assert survey._spawnable()  # pytest's own main is a file
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)
    assert not survey._spawnable()


@pytest.mark.nightly
def test_main_from_stdin_runs_serially(monkeypatch):
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)

    def no_pool(*a, **kw):
        raise AssertionError("spawned workers with main from stdin")

    monkeypatch.setattr(survey, "ProcessPoolExecutor", no_pool)
    clips = _clips(n=2)
    reports = survey.survey(clips, workers=2)
    assert len(reports) == 2 * len(survey.variants(clips[0].audio, clips[0].sr))
