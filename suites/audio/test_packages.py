"""Missing Debian packages: named in a skip locally, a failure under CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.audio import corpus


def test_missing_package_is_named(monkeypatch, require_packages):
    monkeypatch.setitem(corpus.PACKAGES, "noiz2sa", ("noiz2sa-data", Path("/nonexistent.ogg")))
    assert corpus.missing_packages(("noiz2sa",)) == ["noiz2sa-data"]

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="noiz2sa-data"):
        require_packages(("noiz2sa",))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="noiz2sa-data.*apt-get install"):
        require_packages(("noiz2sa",))
