"""The port under test (--port, default: the bundled model) through the adapter protocol:
every stage against the golden recorded from --weights (golden parity per stage, the port's
own audio through `audio check`). The tests themselves live in harness.ports.suite, so a
port's own repository runs the very same ones. The `full` variant checks the port on the
seeded full-size checkpoint against the full-size goldens (real dimensions)."""

import json

import pytest

from harness.ports.suite import test_port_stage  # noqa: F401


@pytest.mark.full
def test_port_stages_full(request, port_spec, full_checkpoint, golden_dir, report_dir):
    from harness.ports.check import check_port
    from harness.ports.report import to_markdown

    stages = request.config.getoption("--port-stages")
    report = check_port(port_spec, full_checkpoint, golden_dir,
                        **({"stages": stages.split(",")} if stages else {}))
    (report_dir / "port-full.md").write_text(to_markdown(report))
    (report_dir / "port-full.json").write_text(json.dumps(report.to_dict(), indent=1))
    assert report.case.startswith("full-")
    failed = [f"{s.name}: {s.detail}" for s in report.stages if s.verdict == "fail"]
    assert report.covered and not failed, "; ".join(failed)
