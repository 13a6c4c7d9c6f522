"""Fixtures for the audio suites: real music clips (committed in suites/audio/corpus/, or from
Debian packages), and every check run once on every test clip, clean and faulted (the report
directory comes from the root conftest)."""

from __future__ import annotations

import os

import pytest

from harness.audio import corpus, survey


def _require_packages(needs):
    """Skip (locally) or fail (under CI) naming the Debian packages that are missing."""
    missing = corpus.missing_packages(needs)
    if missing:
        msg = f"missing Debian package(s) {', '.join(missing)}; install with: {corpus.APT_LINE}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def require_packages():
    return _require_packages


@pytest.fixture(scope="session")
def test_clips():
    needs = corpus.needs_packages(corpus.TEST)  # () when the committed corpus holds them all
    if needs:
        _require_packages(needs)
    return corpus.clips(corpus.TEST)


@pytest.fixture(scope="session")
def reports(test_clips):
    """{(clip name, variant): Report} for every test clip: clean, benign variants and every
    fault at its nominal depth, each checked against the clean clip as reference. Clean and
    benign variants carry every check, faults the checks meant for them (faults.INTENDED):
    all the assertions need, at ~40% of the whole table's time."""
    return survey.survey(test_clips, every_check=False)


@pytest.fixture(scope="session")
def all_reports(test_clips):
    """`reports` with every check on every fault too: the whole confusion table."""
    return survey.survey(test_clips)
