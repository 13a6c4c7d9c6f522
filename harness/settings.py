"""The harness's settings: every `SAO_*` environment variable is read here and nowhere else.

| variable | default | what it sets |
|---|---|---|
| `SAO_HARNESS_CACHE` | `$XDG_CACHE_HOME/sao-harness` (`~/.cache/sao-harness`) | seeded checkpoints, rendered music, LiteRT exports |
| `SAO_REFERENCE_PYTHON` | `.venv-ref/bin/python` beside the checkout, if it exists | python of the reference virtualenv (official PyTorch code + LiteRT; `harness/reference/install_env.sh`) |
| `SAO_GOLDEN_DIR` | the checkout's `golden/`; installed from a wheel, its packaged tiny goldens | golden store and benchmark baselines (`--golden-dir` wins where a command has it) |
| `SAO_HARNESS_DEVICE` | `cpu` | MLX device of model-running commands and suites (`--device` wins) |
| `SAO_AUDIO_CORPUS` | the committed `suites/audio/corpus` | real-music test clips: a committed-layout directory, or `debian` for the packages |
| `SAO_AUDIO_SYSTEM_SHARE` | `/usr/share` | where the Debian music packages are looked for |
| `SAO_HARNESS_NO_PRELOAD` | unset | set: never re-exec with the OpenBLAS preload and heap settings |
| `SAO_REFERENCE_CLEAN` | unset | set by the recorder for its own clean re-exec (internal) |
| `SAO_BENCH_MACHINE_CLASS` | OS-arch-cores | key of the stored benchmark baseline |
| `SAO_HYPOTHESIS_PROFILE` | `ci` | hypothesis profile of the suites (`ci` or `nightly`) |
| `SAO_HARNESS_QUIET` | unset | set: no per-stage progress lines on stderr |
| `SAO_REPORT_DIR` | a temporary dir | where the suites write human-readable reports |
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import BadInput

# The checkout this package runs from (an editable install); a wheel has no checkout.
CHECKOUT = Path(__file__).resolve().parents[1]
# A wheel's copy of the tiny goldens and the benchmark baselines (setup.py puts them there;
# a checkout has none and uses its golden/).
PACKAGED_GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
GOLDEN_DIR = "SAO_GOLDEN_DIR"


def golden_dir() -> Path:
    """The golden store: `$SAO_GOLDEN_DIR`, else a wheel's packaged copy, else the checkout's
    golden/. The wheel ships only the tiny goldens (what the default seeded checkpoint is
    checked against); full-size ones are a checkout's, located with this or --golden-dir."""
    d = os.environ.get(GOLDEN_DIR)
    if d:
        return Path(d)
    return PACKAGED_GOLDEN if PACKAGED_GOLDEN.is_dir() else CHECKOUT / "golden"


def cache_root() -> Path:
    return Path(os.environ.get("SAO_HARNESS_CACHE")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sao-harness")


# The MLX device (harness/device.py); exported so subprocesses (the benchmark gate's pytest
# runs) use the same one.
DEVICE = "SAO_HARNESS_DEVICE"


def device() -> str | None:
    return os.environ.get(DEVICE) or None


def set_device(name: str) -> None:
    os.environ[DEVICE] = name


# The real-music corpus (harness/audio/corpus.py): a committed-layout directory, or "debian".
AUDIO_CORPUS = "SAO_AUDIO_CORPUS"


def audio_corpus() -> str | None:
    return os.environ.get(AUDIO_CORPUS) or None


def audio_system_share() -> Path:
    """Where Debian's packages put their files (a test points it at an empty directory)."""
    return Path(os.environ.get("SAO_AUDIO_SYSTEM_SHARE") or "/usr/share")


def quiet() -> bool:
    """No progress lines (harness/progress.py) on stderr."""
    return bool(os.environ.get("SAO_HARNESS_QUIET"))


def report_dir() -> Path | None:
    """Where the suites keep their human-readable reports (pytest's --report-dir wins)."""
    d = os.environ.get("SAO_REPORT_DIR")
    return Path(d) if d else None


def hypothesis_profile() -> str:
    """The suites' hypothesis profile (conftest.py): `ci` (bounded) or `nightly`."""
    return os.environ.get("SAO_HYPOTHESIS_PROFILE") or "ci"


def machine_class_override() -> str | None:
    return os.environ.get("SAO_BENCH_MACHINE_CLASS") or None


# The recorder re-executes itself once without the OpenBLAS preload; this marks the child.
CLEAN_REEXEC = {"SAO_REFERENCE_CLEAN": "1"}


def in_clean_reexec() -> bool:
    return bool(os.environ.get("SAO_REFERENCE_CLEAN"))


def reference_python() -> str:
    """The reference virtualenv's python: `$SAO_REFERENCE_PYTHON`, else `.venv-ref` beside the
    checkout; bad input naming both when neither exists."""
    python = os.environ.get("SAO_REFERENCE_PYTHON")
    if python:
        if not Path(python).exists():
            raise BadInput(python, "reference python not found (SAO_REFERENCE_PYTHON): build the "
                                   "reference env with `bash harness/reference/install_env.sh "
                                   "VENV` and point SAO_REFERENCE_PYTHON at VENV/bin/python")
        return python
    beside = CHECKOUT / ".venv-ref" / "bin" / "python"
    if beside.exists():
        return str(beside)
    raise BadInput(None, "reference python not found: SAO_REFERENCE_PYTHON is unset and there is "
                         "no .venv-ref beside the checkout; build it with `bash "
                         "harness/reference/install_env.sh .venv-ref`")
