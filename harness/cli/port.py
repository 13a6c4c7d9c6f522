"""`sao-harness port check PORT`: a port (any implementation, through its adapter) stage by stage
against the golden recorded from its checkpoint.

Exit 0: every covered stage passes; 1: a stage fails (first divergence named); 2: a broken
adapter (bad spec, exception, missing method, wrong shape/dtype, NaN, hang past --timeout) or
bad input, as one line naming the adapter and the stage.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli.options import add_golden_dir_argument
from harness.cli.output import emit
from harness.errors import BadInput
from harness.ports.report import fmt_seconds, to_markdown


def register(sub) -> None:
    from harness.ports import SHIPPED
    from harness.ports.check import STAGE_NAMES
    from harness.ports.runner import DEFAULT_TIMEOUT

    p = sub.add_parser("port", help="test a port (your implementation) through its adapter")
    psub = p.add_subparsers(dest="port_command", required=True, parser_class=type(p))
    c = psub.add_parser("check", help="every stage of a port against the goldens")
    c.add_argument("port", help=f"a shipped port ({', '.join(SHIPPED)}), module:attr or "
                                "path/to/file.py:attr")
    c.add_argument("--weights", type=Path, default=None,
                   help="checkpoint dir in the official layout (default: seeded tiny synth); "
                        "the golden is chosen by its sha256")
    add_golden_dir_argument(c)
    c.add_argument("--case", default=None, help="golden case (default: the matching torch "
                                               "pingpong case with the most tensors)")
    c.add_argument("--stages", default=",".join(STAGE_NAMES),
                   help="comma-separated subset of the stages (default: %(default)s)")
    c.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds the adapter may take per call (default: %(default)s)")
    c.add_argument("--report", type=Path, metavar="DIR",
                   help="write port-<name>.md/.json here (default: none)")
    c.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    c.set_defaults(func=cmd_check, inputs=("weights",))


def write_report(args, report, error: str | None = None) -> None:
    """port-<name>.md/.json in --report; a broken adapter's report holds the stages before."""
    data = report.to_dict()
    md = to_markdown(report)
    if error:
        data.update(passed=False, error=error)
        md += f"\n**broken adapter**: {error}\n"
    try:
        args.report.mkdir(parents=True, exist_ok=True)
        stem = "port-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in args.port)
        (args.report / f"{stem}.md").write_text(md)
        (args.report / f"{stem}.json").write_text(json.dumps(data, indent=1))
    except OSError as e:
        raise BadInput(args.report, f"cannot write report: {e.strerror or e}") from None


def cmd_check(args) -> int:
    from harness.ports.check import check_port

    try:
        report = check_port(args.port, args.weights, args.golden_dir, args.case, args.timeout,
                            [s.strip() for s in args.stages.split(",") if s.strip()])
    except BadInput as e:
        partial = getattr(e, "partial", None)
        if args.report and partial is not None:
            write_report(args, partial, error=str(e))
        # main() prints the error object under --json; these keys go into it
        e.json_extra = {"port": args.port, "stages": [s.to_dict() for s in partial.stages]
                        if partial is not None else []}
        raise
    if args.report:
        write_report(args, report)
    if args.json:
        emit(args, report.to_dict())
    else:
        print(f"port {report.port} ({report.adapter}) vs golden {report.case}")
        for s in report.stages:
            times = f" [port {fmt_seconds(s.seconds)}, bundled {fmt_seconds(s.bundled_seconds)}]" \
                if s.seconds is not None else ""
            print(f"  {s.name}: {s.verdict.upper()} {s.detail}{times}")
        first = report.first_failure
        print(("PASS" if report.passed else "FAIL") +
              (f": first divergence {first.first_divergence} in stage {first.name}"
               if first else "" if report.passed else ": no stage covered"))
    return 0 if report.passed else 1
