"""`sao-harness golden calibrate --device D [--out FILE]`: measure MLX on a device against the
goldens and write a proposed floor table (harness/golden/device_floors/README.md).

Exit 0 when the table is written; 2 on bad input (no device, no matching golden, unwritable
--out). It judges nothing: the table is reviewed, then committed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from harness.cli.options import add_device_argument
from harness.cli.output import emit
from harness.errors import BadInput
from harness.progress import progress


def add_calibrate_parser(gsub) -> None:
    from harness.cli.compare import add_case_arguments

    p = gsub.add_parser("calibrate", help="run the goldens on a device and propose its floors "
                                          "(worst SNR per group - >= 10 dB, down to 5 dB steps)")
    add_case_arguments(p)
    p.add_argument("--out", type=Path, default=None,
                   help="proposed table (default: floors-<device>-<dtype>.json here)")
    p.add_argument("--json", action="store_true", help="machine-readable table on stdout")
    add_device_argument(p)
    p.set_defaults(func=cmd_calibrate, inputs=("weights",))


def write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise BadInput(path, f"cannot write: {e.strerror or e}") from None


def cmd_calibrate(args) -> int:
    import mlx.core as mx

    from harness.golden.calibrate import proposed_table, worst_per_group
    from harness.cli.compare import matching_goldens
    from harness.compare.divergence import compare_golden
    from harness.device import current
    from harness.provenance import provenance
    from harness.weights.load import load_model
    from harness.weights.synth import default_checkpoint

    device = current()
    out = args.out or Path(f"floors-{device}-{args.dtype}.json")
    if out.is_dir():
        raise BadInput(out, "cannot write: is a directory")
    weights = args.weights or default_checkpoint("tiny")
    goldens, skipped = matching_goldens(args, weights)
    model, _ = load_model(weights, mx.float16 if args.dtype == "fp16" else mx.float32)
    pairs = []
    for g, notes in goldens:
        progress(f"comparing with golden {g.case} on {device}")
        pairs.append((g, compare_golden(model, g, dtype=args.dtype, notes=notes)))
    table = proposed_table(worst_per_group(pairs), device, args.dtype, provenance(device))
    table["cases"] = [g.case for g, _ in pairs]
    table["not_compared"] = skipped
    write_atomic(out, json.dumps(table, indent=1) + "\n")
    if args.json:
        emit(args, {"out": str(out), **table}, passed=True)
        return 0
    print(f"device {device}, MLX {args.dtype}, cases {', '.join(table['cases'])}")
    print(f"{'policy':<24}{'group':<13}{'worst SNR':>10}{'proposed':>10}{'CPU floor':>10}"
          f"{'provisional':>12}  worst tensor (case)")
    for key, groups in table["policies"].items():
        for g, v in groups.items():
            fmt = lambda x: "-" if x is None else f"{x:g}" if isinstance(x, float) else str(x)
            print(f"{key:<24}{g:<13}{fmt(v['worst_snr_db']):>10}{fmt(v['floor_db']):>10}"
                  f"{fmt(v['cpu_floor_db']):>10}{fmt(v['provisional_floor_db']):>12}  "
                  f"{v['tensor']} ({v['case']})")
    for s in skipped:
        print(f"{s['case']}: not compared, {s['reason']}")
    use = (f"review it; commit as harness/golden/device_floors/{device}.json to use it"
           if device != "cpu" else "the CPU floors live in harness/golden/tolerances.py; "
                                   "each must be <= the proposed one")
    print(f"proposed floor table written: {out} ({use})")
    return 0
