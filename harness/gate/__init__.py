"""The weight gate: accept or reject a candidate weight file against the approved one.

`run_gate(Options(...)) -> GateResult` (runner.py) runs the stages of stages.py; report.py
writes report.md / report.html / junit.xml; harness/cli/gate.py is `sao-harness gate`.
"""
