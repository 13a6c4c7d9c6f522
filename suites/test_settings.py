"""harness.settings: the one home of the SAO_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import settings
from harness.errors import BadInput


def test_cache_root_follows_the_setting_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("SAO_HARNESS_CACHE", str(tmp_path / "c"))
    assert settings.cache_root() == tmp_path / "c"
    monkeypatch.delenv("SAO_HARNESS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert settings.cache_root() == tmp_path / "x" / "sao-harness"


def test_reference_python_from_setting_beside_checkout_or_one_clear_error(monkeypatch, tmp_path):
    py = tmp_path / "python"
    py.write_text("")
    monkeypatch.setenv("SAO_REFERENCE_PYTHON", str(py))
    assert settings.reference_python() == str(py)
    monkeypatch.setenv("SAO_REFERENCE_PYTHON", str(tmp_path / "absent"))
    with pytest.raises(BadInput, match=r"reference python not found \(SAO_REFERENCE_PYTHON\)"):
        settings.reference_python()
    monkeypatch.delenv("SAO_REFERENCE_PYTHON")
    monkeypatch.setattr(settings, "CHECKOUT", tmp_path)  # no .venv-ref there
    with pytest.raises(BadInput, match="no .venv-ref beside the checkout") as e:
        settings.reference_python()
    assert "\n" not in str(e.value)
    (tmp_path / ".venv-ref" / "bin").mkdir(parents=True)
    (tmp_path / ".venv-ref" / "bin" / "python").write_text("")
    assert Path(settings.reference_python()) == tmp_path / ".venv-ref" / "bin" / "python"


def test_no_other_module_reads_sao_variables():
    """One settings home: SAO_* names are read only in harness/settings.py (and harness/blas.py,
    whose re-exec guard must work before anything else is imported)."""
    root = Path(settings.__file__).parent
    readers = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py")
                     if "environ" in (t := p.read_text()) and "\"SAO_" in t)
    assert set(readers) <= {"settings.py", "blas.py"}, readers


def test_golden_dir_from_setting_then_packaged_copy_then_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.GOLDEN_DIR, str(tmp_path / "g"))
    assert settings.golden_dir() == tmp_path / "g"
    monkeypatch.delenv(settings.GOLDEN_DIR)
    monkeypatch.setattr(settings, "PACKAGED_GOLDEN", tmp_path / "absent")  # a checkout
    assert settings.golden_dir() == settings.CHECKOUT / "golden"
    monkeypatch.setattr(settings, "PACKAGED_GOLDEN", tmp_path)  # a wheel's copy exists
    assert settings.golden_dir() == tmp_path
