"""pytest plugin (entry point `pytest11`): sao-harness's options and fixtures in any repository.

Installed with sao-harness, so a port's own repository gets `--port`, `--weights`,
`--golden-dir`, `--report-dir` and the fixtures below without copying a conftest.py. This
repository's conftest.py names it in `pytest_plugins`; the entry point is registered under
the module's own name, so the two never register the options twice.

Fixtures: `tiny_checkpoint`, `full_checkpoint` (seeded synthetic checkpoints), `weights_path`
(--weights or the tiny one), `golden_dir`, `tflite_dir`, `report_dir`, `port_spec` (--port,
default `bundled`) and `port_report` (the whole `port check` of that port, run once per
session). `harness.ports.suite` holds the per-stage tests that use them.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    g = parser.getgroup("sao-harness")
    g.addoption("--weights", type=Path, default=None,
                help="checkpoint dir or model.safetensors to test instead of the seeded tiny one")
    g.addoption("--golden-dir", type=Path, default=None,
                help="golden store to compare against (default: $SAO_GOLDEN_DIR, else the "
                     "checkout's golden/, or a wheel's packaged tiny goldens)")
    g.addoption("--tflite-dir", type=Path, default=None,
                help="directory with Arm's conditioners/dit/autoencoder .tflite files")
    g.addoption("--report-dir", type=Path, default=None,
                help="write human-readable reports (tables, plots) here")
    g.addoption("--device", choices=("cpu", "gpu"), default=None,
                help="MLX device for every model run (default: $SAO_HARNESS_DEVICE or cpu)")
    g.addoption("--port", default="bundled",
                help="the port under test: a shipped name, module:attr or path/to/file.py:attr "
                     "(default: bundled)")
    g.addoption("--port-stages", default=None,
                help="comma-separated stages of --port to check (default: all)")
    g.addoption("--port-timeout", type=float, default=None,
                help="seconds a port's adapter may take per call (default: port check's)")


def pytest_configure(config):
    for line in ("full: full-size (real dimensions) checkpoints; slow",
                 "nightly: long runs for the nightly workflow"):
        config.addinivalue_line("markers", line)
    _use_device(config)


def _use_device(config):
    """Set the MLX device once, before any test (harness.device); a device this machine lacks
    ends the session with exit 2 and one line."""
    try:
        from harness.device import use_device
        from harness.errors import BadInput
    except ImportError:  # the reference venv without MLX
        return
    try:
        use_device(config.getoption("--device"))
    except BadInput as e:
        pytest.exit(f"sao-harness: error: {e}", returncode=2)
    except ImportError:
        if config.getoption("--device") not in (None, "cpu"):
            pytest.exit("sao-harness: error: --device needs MLX, not installed here", returncode=2)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from harness.weights.synth import write_checkpoint
    return write_checkpoint("tiny", 0, tmp_path_factory.mktemp("ckpt") / "tiny-seed0")


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from harness.weights.load import load_model
    model, _ = load_model(tiny_checkpoint)
    return model


@pytest.fixture(scope="session")
def full_checkpoint(tmp_path_factory) -> Path:
    from harness.weights.synth import write_checkpoint
    return write_checkpoint("full", 0, tmp_path_factory.mktemp("ckpt") / "full-seed0")


@pytest.fixture(scope="session")
def weights_path(request, tiny_checkpoint) -> Path:
    """The checkpoint under test: --weights if given, else the seeded tiny one."""
    return request.config.getoption("--weights") or tiny_checkpoint


@pytest.fixture(scope="session")
def golden_dir(request) -> Path:
    from harness.golden.store import DEFAULT_ROOT

    return request.config.getoption("--golden-dir") or DEFAULT_ROOT


@pytest.fixture(scope="session")
def tflite_dir(request) -> Path | None:
    return request.config.getoption("--tflite-dir")


@pytest.fixture(scope="session")
def report_dir(request, tmp_path_factory) -> Path:
    from harness.settings import report_dir as configured

    d = request.config.getoption("--report-dir") or configured()
    d = Path(d) if d else tmp_path_factory.mktemp("report")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def port_spec(request) -> str:
    return request.config.getoption("--port")


@pytest.fixture(scope="session")
def port_report(request, port_spec, weights_path, golden_dir, report_dir):
    """`port check` of --port on --weights against the golden recorded from them; the JSON
    and Markdown reports land in report_dir."""
    import json

    from harness.ports.check import STAGE_NAMES, check_port
    from harness.ports.report import to_markdown
    from harness.ports.runner import DEFAULT_TIMEOUT

    timeout = request.config.getoption("--port-timeout") or DEFAULT_TIMEOUT
    stages = request.config.getoption("--port-stages")
    stages = [s.strip() for s in stages.split(",")] if stages else STAGE_NAMES
    report = check_port(port_spec, weights_path, golden_dir, timeout=timeout, stages=stages)
    stem = "port-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in port_spec)
    (report_dir / f"{stem}.md").write_text(to_markdown(report))
    (report_dir / f"{stem}.json").write_text(json.dumps(report.to_dict(), indent=1))
    return report
