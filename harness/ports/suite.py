"""The per-stage tests of a port, for pytest (`pytest --port PORT`).

This repository runs them from suites/ports/; a port's own repository runs them with
`pytest --pyargs harness.ports.suite --port mypkg.adapter:MyPort` or by importing
`test_port_stage` into one of its test files. Fixtures come from the sao-harness plugin.
A stage the port does not cover is skipped, saying so (never a pass).
"""

from __future__ import annotations

import pytest

from harness.ports.check import STAGE_NAMES
from harness.ports.result import NOT_COVERED, PASS


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_port_stage(port_report, stage):
    s = port_report.stage(stage)
    if s.verdict == NOT_COVERED:
        pytest.skip(f"missing: port {port_report.port} does not cover {stage} ({s.detail})")
    assert s.verdict == PASS, f"port {port_report.port}: {stage}: {s.detail}"
