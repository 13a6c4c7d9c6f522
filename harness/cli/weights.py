"""`sao-harness weights extract` and `sao-harness weights diff`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.cli.output import emit

SHOW = 10  # missing / unmapped tensors listed in text output


def register(sub) -> None:
    p = sub.add_parser("weights", help="weights in Arm-style TFLite files vs a checkpoint")
    wsub = p.add_subparsers(dest="weights_command", required=True, parser_class=type(p))

    e = wsub.add_parser("extract", help="TFLite constants -> .safetensors under official names")
    e.add_argument("tflite", type=Path, help="directory with conditioners_float32.tflite, "
                                             "dit_model.tflite, autoencoder_model.tflite (any "
                                             "subset), or one .tflite file")
    e.add_argument("--out", type=Path, required=True,
                   help="output .safetensors (written to a temporary file, then renamed)")
    e.add_argument("--force", action="store_true",
                   help="replace --out even when it is not a regular file (a FIFO, a device)")
    e.add_argument("--reference", type=Path, default=None,
                   help="checkpoint: its config, and its content to name tensors whose scope "
                        "and shape leave a choice (default: none; the names from the graph alone)")
    e.add_argument("--config", default=None,
                   help="tiny, full, a checkpoint dir or a model_config.json (default: the "
                        "preset the files fit)")
    e.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    e.set_defaults(func=cmd_extract, inputs=("tflite", "reference"))

    d = wsub.add_parser("diff", help="same weights up to quantization, or different?")
    d.add_argument("a", type=Path, help="checkpoint, extracted .safetensors or TFLite dir")
    d.add_argument("b", type=Path, help="checkpoint, extracted .safetensors or TFLite dir")
    d.add_argument("--config", default=None,
                   help="model config for TFLite sides when neither side is a checkpoint "
                        "(default: the preset the files fit)")
    d.add_argument("--show", type=int, default=SHOW, help="tensors listed per section")
    d.add_argument("--json", action="store_true", help="machine-readable verdict on stdout")
    d.set_defaults(func=cmd_diff, inputs=("a", "b"))


def cmd_extract(args) -> int:
    from harness.files import check_output_target
    from harness.weights.tflite.extract import extract, load_config, write_extraction
    from harness.weights.tflite.names import short_name

    check_output_target(args.out, args.force, " (--force replaces it)")  # before any work
    cfg = load_config(args.config) if args.config else None
    ref = None
    if args.reference is not None:
        from harness.weights.load import load_official, open_checkpoint

        ckpt = open_checkpoint(args.reference)
        cfg = cfg or ckpt.config
        ref = load_official(ckpt)
    ex = extract(args.tflite, cfg, ref)
    write_extraction(ex, args.out)
    how = Counter(i["how"] for i in ex.info.values())
    storage = Counter(i["storage"] for i in ex.info.values())
    summary = {"out": str(args.out), "preset": ex.config.preset, "files": ex.roles,
               "mapped": len(ex.tensors), "how": dict(how), "storage": dict(storage),
               "expected": len(ex.expected()), "missing": ex.missing, "folded": ex.folded,
               "unmapped": ex.unmapped, "zero_biases": ex.zero_biases,
               "transforms": dict(Counter(i["transform"] for i in ex.info.values()
                                          if i["transform"])),
               "weight_norm_fused": sum(1 for i in ex.info.values() if i["fused"])}
    if args.json:
        emit(args, summary, passed=True)
        return 0
    files = ", ".join(Path(p).name for p in ex.roles.values())
    print(f"{args.tflite}: {files} as {ex.config.preset}: {len(ex.tensors)} of "
          f"{len(ex.expected())} expected tensors mapped ("
          + ", ".join(f"{n} by {k}" for k, n in how.most_common()) + "; "
          + ", ".join(f"{k} x{n}" for k, n in storage.most_common()) + ")")
    if summary["weight_norm_fused"]:
        print(f"  weight norm is fused in TFLite: {summary['weight_norm_fused']} convs stored as "
              "<module>.weight = g·v/‖v‖ (official layout); `weights diff` fuses the checkpoint")
    if ex.folded:
        print(f"  {len(ex.folded)} norm(s) folded by the converter into the next Linear "
              f"(W·diag(γ), b + W·β), e.g. {next(iter(ex.folded))} -> "
              f"{next(iter(ex.folded.values()))}")
    if summary["transforms"]:
        print("  undone constant folding: " + ", ".join(f"{k} x{n}" for k, n in
                                                          summary["transforms"].items()))
    if ex.zero_biases:
        print(f"  {len(ex.zero_biases)} zero bias(es) added by the converter to bias-free layers")
    for m in ex.missing[:SHOW]:
        print(f"  missing: {m}")
    for u in ex.unmapped[:SHOW]:
        print(f"  unmapped: {u['file']}:{short_name(u['tensor'])} {u['shape']} {u['dtype']} "
              f"used by {','.join(u['used_by'])} ({u['reason']})")
    more = max(0, len(ex.missing) - SHOW) + max(0, len(ex.unmapped) - SHOW)
    if more:
        print(f"  ... and {more} more missing/unmapped (--json lists all)")
    print(f"wrote {args.out}")
    return 0


def cmd_diff(args) -> int:
    from harness.compare.weightdiff import report, run_diff
    from harness.weights.tflite.extract import load_config

    d = run_diff(args.a, args.b, load_config(args.config) if args.config else None)
    if args.json:
        emit(args, d.as_dict(), passed=d.same)
    else:
        print(report(d, args.show))
    return 0 if d.same else 1
