"""`sao-harness inspect PATH`: strict validation summary of a checkpoint."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.cli.output import emit
from harness.model.prefixes import CHECKPOINT_GROUPS as GROUPS
from harness.weights.load import load_official, load_t5, open_checkpoint, sha256_file
from harness.weights.safetensors_io import dtype_names


def register(sub) -> None:
    p = sub.add_parser("inspect", help="validate a checkpoint strictly and summarize it")
    p.add_argument("path", type=Path, help="checkpoint directory or model.safetensors")
    p.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    p.set_defaults(func=cmd_inspect, inputs=("path",))


def inspect_checkpoint(path: Path) -> dict:
    """Validation summary; raises BadInput on the first file that fails validation."""
    ckpt = open_checkpoint(path)
    weights = load_official(ckpt)  # strict: keys, shapes, dtypes, finite values
    dtypes = dtype_names(ckpt.model_file)
    groups = {}
    for g in GROUPS:
        keys = [k for k in weights if k.startswith(g)]
        groups[g.rstrip(".")] = {
            "tensors": len(keys),
            "parameters": int(sum(weights[k].size for k in keys)),
            "dtypes": dict(Counter(dtypes[k] for k in keys)),
        }
    summary = {"path": str(ckpt.model_file), "preset": ckpt.config.preset,
               "sha256": sha256_file(ckpt.model_file), "tensors": len(weights),
               "groups": groups, "t5": None, "tokenizer": None, "valid": True, "passed": True}
    if ckpt.t5_dir is not None:
        t5 = load_t5(ckpt)
        summary["t5"] = {"tensors": len(t5), "parameters": int(sum(v.size for v in t5.values())),
                         "sha256": sha256_file(ckpt.t5_dir / "model.safetensors")}
        if ckpt.spiece.exists():
            from harness.model.tokenizer import Tokenizer
            summary["tokenizer"] = {"path": str(ckpt.spiece),
                                    "vocab_size": Tokenizer.from_file(ckpt.spiece).vocab_size}
    return summary


def cmd_inspect(args) -> int:
    s = inspect_checkpoint(args.path)
    if args.json:
        emit(args, s)
        return 0
    print(f"{s['path']}: valid {s['preset']} checkpoint, {s['tensors']} tensors, sha256 {s['sha256']}")
    for name, g in s["groups"].items():
        dt = ", ".join(f"{k} x{v}" for k, v in g["dtypes"].items())
        print(f"  {name:<20} {g['tensors']:>4} tensors {g['parameters']:>12,} params  {dt}")
    if s["t5"]:
        print(f"  {'t5':<20} {s['t5']['tensors']:>4} tensors {s['t5']['parameters']:>12,} params")
    else:
        print("  t5: absent (generate needs t5/ beside the checkpoint)")
    if s["tokenizer"]:
        print(f"  tokenizer: {s['tokenizer']['path']} ({s['tokenizer']['vocab_size']} pieces)")
    return 0
