"""`sao-harness compare`: the bundled MLX model vs golden cases, naming the first divergence.

Exit 0: every tensor of every compared case within tolerance; 1: a divergence; 2: bad input
(missing golden, unparsable manifest, a --case recorded for other weights, shape/dtype
mismatch). Without --case, cases recorded for other weights are listed as not compared.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.golden.store import DEFAULT_ROOT, case_dirs
from harness.cli.options import add_device_argument, add_golden_dir_argument
from harness.cli.output import emit
from harness.errors import BadInput
from harness.progress import progress


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare the bundled MLX model with golden cases and "
                                       "name the first diverging module")
    add_case_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="write <case>.md and <case>.json for every case here (default: none)")
    add_device_argument(p)
    p.set_defaults(func=cmd_compare, inputs=("weights",))


def add_case_arguments(p) -> None:
    """Which goldens and which weights: shared by `compare` and `golden calibrate`."""
    from harness.compare.divergence import DTYPES

    p.add_argument("--case", dest="cases", action="extend", nargs="+", metavar="NAME",
                   help="golden case(s) to compare (default: every case in --golden-dir)")
    add_golden_dir_argument(p, DEFAULT_ROOT)
    p.add_argument("--weights", type=Path, default=None,
                   help="checkpoint dir or model.safetensors (default: seeded tiny checkpoint); "
                        "must be the one the goldens were recorded from")
    p.add_argument("--dtype", choices=DTYPES, default="fp32", help="MLX compute dtype")
    p.add_argument("--unverified-weights", action="store_true",
                   help="compare goldens that record no model.safetensors hash (arm-tflite); "
                        "the report says the weights were not verified (default: refuse them)")


def selected_cases(golden_dir: Path, names: list[str] | None) -> list[Path]:
    if not names:
        dirs = case_dirs(golden_dir)
        if not dirs:
            raise BadInput(golden_dir, "holds no golden cases")
        return dirs
    if not golden_dir.is_dir():
        raise BadInput(golden_dir, "golden directory does not exist")
    return [golden_dir / n for n in names]


def matching_goldens(args, weights) -> tuple[list, list[dict]]:
    """[(golden, notes)] recorded from `weights`, [{case, reason}] not compared. Every case is
    verified and matched to the weights before the model loads. A case named with --case must
    match; without --case, cases recorded for other weights (a store holds tiny and full
    ones) are listed as not compared, and at least one must match."""
    from harness.compare.divergence import OtherWeights, verify_weights
    from harness.golden.store import check_golden
    from harness.weights.load import open_checkpoint

    ckpt = open_checkpoint(weights)
    goldens, skipped = [], []
    for d in selected_cases(args.golden_dir, args.cases):
        golden = check_golden(d, d.name)
        try:
            goldens.append((golden, verify_weights(golden, ckpt, args.unverified_weights)))
        except OtherWeights as e:
            if args.cases:
                raise
            skipped.append({"case": d.name, "reason": e.problem})
    if not goldens:
        raise BadInput(args.golden_dir, f"no golden case was recorded from {weights} "
                                        f"({len(skipped)} recorded for other weights)")
    return goldens, skipped


def cmd_compare(args) -> int:
    import mlx.core as mx

    from harness.compare.divergence import compare_golden
    from harness.compare.report import to_json, to_markdown
    from harness.gate.report import plot_per_layer
    from harness.provenance import provenance
    from harness.weights.load import load_model
    from harness.weights.synth import default_checkpoint

    weights = args.weights or default_checkpoint("tiny")
    goldens, skipped = matching_goldens(args, weights)
    progress(f"loading {weights}")
    model, _ = load_model(weights, mx.float16 if args.dtype == "fp16" else mx.float32)
    results = []
    for g, notes in goldens:
        progress(f"comparing with golden {g.case} ({len(g.tensors)} tensors)")
        results.append(compare_golden(model, g, dtype=args.dtype, notes=notes))

    if args.report:
        try:
            args.report.mkdir(parents=True, exist_ok=True)
            for r in results:
                plot = args.report / f"{r.case}.png"
                plot_per_layer([(f"{r.case} ({r.producer}, {r.policy.device}): free run vs golden",
                                 [(row.name, row.full.snr_db) for row in r.rows],
                                 [row.tolerance.snr_db for row in r.rows],
                                 [row.local.snr_db for row in r.rows])], plot,
                               "Per-layer SNR against the golden",
                               [r.first.name if r.first else None])
                (args.report / f"{r.case}.md").write_text(to_markdown(r, plot.name))
                (args.report / f"{r.case}.json").write_text(json.dumps(to_json(r), indent=1) + "\n")
        except OSError as e:
            raise BadInput(args.report, f"cannot write report: {e.strerror or e}") from None
    passed = all(r.passed for r in results)
    if args.json:
        emit(args, {"passed": passed, "provenance": provenance(), "weights": str(weights),
                    "not_compared": skipped, "cases": [to_json(r) for r in results]})
    else:
        for r in results:
            print(f"{r.case}: {'PASS' if r.passed else 'FAIL'} {r.verdict()}")
        for label in dict.fromkeys(r.policy.label for r in results if not r.policy.calibrated):
            print(f"note: tolerance policy {label}")
        for s in skipped:
            print(f"{s['case']}: not compared, {s['reason']}")
    return 0 if passed else 1
