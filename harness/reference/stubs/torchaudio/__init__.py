"""Stand-in for torchaudio in the reference venv: importable, raises if anything is used."""

from . import transforms  # noqa: F401  (imported as `from torchaudio import transforms`)

__version__ = "0+sao-harness-stub"


def __getattr__(name):
    raise AttributeError(f"torchaudio stand-in (sao-harness reference venv): no {name!r}")
