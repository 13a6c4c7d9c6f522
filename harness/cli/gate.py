"""`sao-harness gate CANDIDATE [--baseline APPROVED] [--expect same|update] ...`

Exit 0 accept, 1 reject, 2 bad input (the gate's own inputs: options, the approved
checkpoint, --golden-dir, --report). A malformed candidate is a reject, not bad input.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from harness.cli.options import add_device_argument, add_golden_dir_argument
from harness.cli.output import emit
from harness.errors import one_line
from harness.gate.result import ERROR, Stage


def register(sub) -> None:
    p = sub.add_parser("gate", help="accept or reject a weight file against the approved one",
                       description="Judge CANDIDATE (a checkpoint dir or model.safetensors): "
                                   "structure, strict load, parity with the reference's goldens, "
                                   "drift against --baseline, audio checks. Exit 0 accept, "
                                   "1 reject, 2 bad input.")
    p.add_argument("candidate", type=Path, help="checkpoint directory or weight file")
    p.add_argument("--baseline", type=Path, default=None,
                   help="the approved checkpoint (dir or model.safetensors; default: none, no "
                        "drift stage)")
    p.add_argument("--expect", choices=("same", "update"), default=None,
                   help="same: a re-encoding (drift must stay within the dtype's tolerance); "
                        "update: retrained weights (goldens and audio checks must pass, drift "
                        "is reported). Default: same with --baseline, else update")
    add_golden_dir_argument(p)
    p.add_argument("--no-parity", action="store_true",
                   help="waive the golden comparison (written into the report; default: "
                        "compare)")
    p.add_argument("--frames", type=int, default=None,
                   help="latent frames of the drift/audio probes (default: the model's length, "
                        "at least 0.75 s of audio, at most 256)")
    p.add_argument("--audio-thresholds", type=Path, default=None,
                   help="TOML of audio-check thresholds (default: harness/audio/thresholds.toml)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds; a gate that does not finish in time gives the verdict error "
                        "(default: no limit)")
    p.add_argument("--report", type=Path, default=None,
                   help="write report.md, report.html, plots, junit.xml, result.json here "
                        "(default: none)")
    p.add_argument("--json", action="store_true",
                   help='print {"passed", "verdict", "reasons", "stages", ...} on stdout')
    add_device_argument(p)
    p.set_defaults(func=cmd_gate, inputs=("candidate", "baseline", "audio_thresholds"))


def _cli_process() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return (spec is not None and spec.name in ("harness.cli", "harness.cli.__main__")) or Path(sys.argv[0]).name == "sao-harness"


def cmd_gate(args) -> int:
    from harness.gate.report import prepare_dir, write_minimal, write_report
    from harness.gate.runner import run_gate
    from harness.gate.stages import Options

    expect = args.expect or ("same" if args.baseline is not None else "update")
    opts = Options(args.candidate, args.baseline, expect, args.golden_dir, not args.no_parity,
                   args.frames, args.timeout, args.audio_thresholds)
    report_dir = prepare_dir(args.report) if args.report else None
    result = run_gate(opts)  # BadInput (exit 2) only for the gate's own inputs
    if report_dir is not None:
        try:
            write_report(result, report_dir)
        except Exception as e:  # noqa: BLE001 - a report that could not be written rejects
            result.stages.append(Stage("report", ERROR, summary="report not written", reasons=[
                f"internal error: {type(e).__name__}: {e}"], data={"traceback":
                                                                   traceback.format_exc()}))
            write_minimal(result, report_dir)  # no file left saying anything but reject
    if args.json:
        emit(args, result.to_dict())
    else:
        # Reasons quote tensor names and paths from the candidate: escaped, one line each, so
        # no file can print a line of its own (an "ACCEPT: ..." into a CI log).
        print(f"{result.verdict.upper()}: {one_line(args.candidate)} (--expect {expect})")
        for s in result.stages:
            print(f"  {s.name:<10} {s.status.upper():<5} {one_line(s.summary)}")
        for r in result.reasons:
            print(f"  - {one_line(r)}")
        if report_dir is not None:
            print(f"report: {one_line(report_dir / 'report.html')}")
    if result.timed_out and _cli_process():
        # The worker thread may still be inside MLX: leave without running its teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.exit_code)
    return result.exit_code
