"""pytest options and session fixtures shared by every suite.

Without options every suite runs on seeded synthetic checkpoints made here (tiny by default;
full-size ones under the `full` marker). `--weights`, `--golden-dir` and `--tflite-dir`
point the suites at a user's real files instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).parent

try:  # the reference virtualenv runs only `-m reference` suites and has no hypothesis
    from hypothesis import HealthCheck, settings
except ImportError:
    settings = None

if settings is not None:
    # `ci` is derandomized and bounded; `nightly` explores far more. Neither keeps an example
    # database, so a stored failure from another run can never make this run flaky.
    for _name, _random, _n in (("ci", True, 40), ("nightly", False, 1000)):
        settings.register_profile(_name, derandomize=_random, database=None, max_examples=_n,
                                  deadline=None, print_blob=True,
                                  suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("SAO_HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    g = parser.getgroup("sao-harness")
    g.addoption("--weights", type=Path, default=None,
                help="checkpoint dir or model.safetensors to test instead of the seeded tiny one")
    g.addoption("--golden-dir", type=Path, default=None,
                help="golden store to compare against (default: the committed golden/)")
    g.addoption("--tflite-dir", type=Path, default=None,
                help="directory with Arm's conditioners/dit/autoencoder .tflite files")
    g.addoption("--report-dir", type=Path, default=None,
                help="write human-readable reports (tables, plots) here")
    g.addoption("--device", choices=("cpu", "gpu"), default=None,
                help="MLX device for every model run (default: $SAO_HARNESS_DEVICE or cpu)")


def pytest_configure(config):
    """Set the MLX device once, before any test (harness.device); a device this machine lacks
    ends the session with exit 2 and one line."""
    if not hasattr(config.option, "device"):
        return
    try:
        from harness.device import use_device
        from harness.errors import BadInput
    except ImportError:  # the reference venv without MLX
        return
    try:
        use_device(config.option.device)
    except BadInput as e:
        pytest.exit(f"sao-harness: error: {e}", returncode=2)
    except ImportError:
        if config.option.device not in (None, "cpu"):
            pytest.exit("sao-harness: error: --device needs MLX, not installed here", returncode=2)


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(condition: bool, what: str):
    """Skip locally, fail in CI: a suite that CI is meant to run must not skip silently."""
    if not condition:
        (pytest.fail if in_ci() else pytest.skip)(f"missing: {what}")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from harness.weights.synth import write_checkpoint
    return write_checkpoint("tiny", 0, tmp_path_factory.mktemp("ckpt") / "tiny-seed0")


@pytest.fixture(scope="session")
def full_checkpoint(tmp_path_factory) -> Path:
    from harness.weights.synth import write_checkpoint
    return write_checkpoint("full", 0, tmp_path_factory.mktemp("ckpt") / "full-seed0")


@pytest.fixture(scope="session")
def weights_path(request, tiny_checkpoint) -> Path:
    """The checkpoint under test: --weights if given, else the seeded tiny one."""
    return request.config.getoption("--weights") or tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from harness.weights.load import load_model
    model, _ = load_model(tiny_checkpoint)
    return model


@pytest.fixture(scope="session")
def golden_dir(request) -> Path:
    return request.config.getoption("--golden-dir") or ROOT / "golden"


@pytest.fixture(scope="session")
def tflite_dir(request) -> Path | None:
    return request.config.getoption("--tflite-dir")


@pytest.fixture(scope="session")
def report_dir(request, tmp_path_factory) -> Path:
    d = request.config.getoption("--report-dir") or os.environ.get("SAO_REPORT_DIR")
    d = Path(d) if d else tmp_path_factory.mktemp("report")
    d.mkdir(parents=True, exist_ok=True)
    return d
