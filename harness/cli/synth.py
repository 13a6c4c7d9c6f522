"""`sao-harness synth`: a seeded checkpoint in the official layout."""

from __future__ import annotations

from pathlib import Path

from harness.model.config import PRESETS


def register(sub) -> None:
    p = sub.add_parser("synth", help="write a seeded checkpoint in the official layout")
    p.add_argument("--config", choices=tuple(PRESETS), default="tiny", help="model preset")
    p.add_argument("--seed", type=int, default=0, help="seed of every tensor")
    p.add_argument("--out", required=True, type=Path, help="output checkpoint directory")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args) -> int:
    from harness.progress import progress
    from harness.weights.load import sha256_file
    from harness.weights.synth import write_checkpoint

    out = write_checkpoint(args.config, args.seed, args.out,
                           progress=lambda m: progress(f"synth {args.config}: {m}"))
    print(f"wrote {args.config} seed {args.seed} checkpoint to {out} "
          f"(model.safetensors sha256 {sha256_file(out / 'model.safetensors')})")
    return 0
