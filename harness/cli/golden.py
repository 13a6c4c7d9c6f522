"""`sao-harness golden record | verify | list`.

record runs the official reference (PyTorch stable-audio-tools, or its LiteRT export, or a
user's Arm TFLite files) in a subprocess (`python -m harness.reference.record`, same
arguments): this env's python if it has stable-audio-tools, else the reference virtualenv's
(`harness.settings.reference_python`; built by harness/reference/install_env.sh).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from harness.cli.options import add_golden_dir_argument
from harness.cli.output import emit, emit_error
from harness.golden.store import DEFAULT_ROOT, MANIFEST_FILE, TENSORS_FILE, case_dirs, check_golden
from harness.errors import BadInput
from harness.progress import progress, without_progress
from harness.settings import CHECKOUT, reference_python


def register(sub) -> None:
    from harness.reference.record import add_record_arguments

    golden = sub.add_parser("golden", help="record, verify and list golden reference tensors")
    gsub = golden.add_subparsers(dest="golden_command", required=True,
                                 parser_class=type(golden))

    p = gsub.add_parser("record", help="record a golden case with the official reference")
    add_record_arguments(p)  # defined beside the recorder, which parses them in its own env
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.set_defaults(func=cmd_record, inputs=("weights",))

    p = gsub.add_parser("verify", help="verify every tensor hash of golden cases")
    add_golden_dir_argument(p, DEFAULT_ROOT, what="a golden store or one case directory in it")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.set_defaults(func=cmd_verify)

    p = gsub.add_parser("list", help="list golden cases")
    add_golden_dir_argument(p, DEFAULT_ROOT)
    p.add_argument("--json", action="store_true", help="machine-readable list on stdout")
    p.set_defaults(func=cmd_list)

    from harness.cli.calibrate import add_calibrate_parser
    add_calibrate_parser(gsub)


def cmd_record(args) -> int:
    """Always a subprocess: this env's python when it has the official code (torch alone, e.g.
    from the `ports` extra, is not enough), else the reference venv's;
    with the OpenBLAS preload removed (it would replace torch's MKL sgemm) and this source
    tree first on PYTHONPATH. The recorder's one-line errors and exit code pass through."""
    from harness.reference import clean_env

    python = sys.executable if importlib.util.find_spec("stable_audio_tools") else \
        reference_python()
    repo = str(CHECKOUT)  # this source tree first: the recorder runs our harness.reference
    env = clean_env(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    progress(f"recording {args.case} with {args.producer} ({python})")
    cmd = [python, "-m", "harness.reference.record", *_argv_of(args)]
    if not args.json:
        return subprocess.run(cmd, env=env).returncode
    # --json: the recorder's own result, inside the envelope; its one-line error becomes the
    # error object (its stderr still passes through).
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        lines = without_progress(proc.stderr)
        line = lines[-1].removeprefix("sao-harness: ").removeprefix("error: ") if lines else \
            f"recorder exited {proc.returncode}"
        emit_error(args, line, proc.returncode if proc.returncode in (1, 2) else 3)
        return proc.returncode
    emit(args, json.loads(proc.stdout.strip().splitlines()[-1]), passed=True)
    return 0


def _argv_of(args) -> list[str]:
    out = []
    for key, value in vars(args).items():
        if key in ("func", "command", "golden_command", "inputs") or value is None or \
                value is False:
            continue
        flag = "--" + key.replace("_", "-")
        out += [flag] if value is True else [flag, str(value)]
    return out


def cmd_verify(args) -> int:
    root = Path(args.golden_dir)
    dirs = case_dirs(root)
    if not dirs:
        raise BadInput(root, f"no golden cases (directories with {MANIFEST_FILE} or {TENSORS_FILE})")
    results = []
    for d in dirs:
        g = check_golden(d, None if d == root else d.name)
        results.append({"case": g.case, "producer": g.producer, "tensors": len(g.tensors)})
        if not args.json:
            print(f"ok {g.case} ({g.producer}, {len(g.tensors)} tensors)")
    if args.json:
        emit(args, {"ok": True, "cases": results}, passed=True)
    return 0


def cmd_list(args) -> int:
    rows = []
    for d in case_dirs(args.golden_dir):
        g = check_golden(d, d.name)
        m = g.manifest
        s = m.get("settings", {})
        rows.append({"case": g.case, "producer": g.producer,
                     "preset": m.get("weights", {}).get("preset", "?"),
                     "tolerance_class": m["tolerance_class"], "tensors": len(g.tensors),
                     "frames": s.get("frames"), "batch": s.get("batch"),
                     "steps": s.get("steps"), "sampler": s.get("sampler"),
                     "mbytes": round((d / TENSORS_FILE).stat().st_size / 1e6, 2)})
    if args.json:
        emit(args, {"cases": rows}, passed=True)
        return 0
    cols = ["case", "producer", "preset", "tensors", "frames", "batch", "steps", "sampler", "mbytes"]
    table = [cols] + [[str(r[c]) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0
