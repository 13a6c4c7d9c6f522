"""The port under test (--port, default: the bundled model) through the adapter protocol:
every stage against the golden recorded from --weights (golden parity per stage, the port's
own audio through `audio check`). The tests themselves live in harness.ports.suite, so a
port's own repository runs the very same ones."""

from harness.ports.suite import test_port_stage  # noqa: F401
