"""`sao-harness generate`: text (or token ids) -> WAV, with per-stage timings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harness.cli.options import add_device_argument
from harness.cli.output import emit
from harness.errors import BadInput


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate audio with the bundled MLX model")
    p.add_argument("--weights", type=Path, default=None,
                   help="checkpoint dir or model.safetensors (default: seeded tiny checkpoint)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--prompt", default="128 BPM tech house drum loop", help="text prompt")
    g.add_argument("--prompt-ids", default=None,
                   help="comma-separated T5 token ids (EOS included), bypassing the tokenizer "
                        "(default: tokenize --prompt)")
    p.add_argument("--seconds", type=float, default=None,
                   help="seconds_total (default: 11, or the model's length if shorter)")
    p.add_argument("--steps", type=int, default=8, help=f"sampler steps, {STEPS[0]}..{STEPS[1]}")
    p.add_argument("--sampler", choices=("pingpong", "euler"), default="pingpong",
                   help="sampler (the small model's own: pingpong)")
    p.add_argument("--cfg-scale", type=float, default=1.0,
                   help=f"classifier-free guidance scale, in (0, {MAX_CFG:g}]")
    p.add_argument("--seed", type=int, default=99, help="noise seed, 0..2**64-1")
    p.add_argument("--out", type=Path, required=True, help="output .wav")
    p.add_argument("--json", action="store_true", help="machine-readable run record on stdout")
    add_device_argument(p)
    p.set_defaults(func=cmd_generate, inputs=("weights",))


# Sane ranges of the numeric options (the official model uses 8 steps, cfg 1..7).
STEPS = (1, 1000)
MAX_CFG = 100.0
MAX_SEED = 2**64 - 1
MAX_PROMPT_CHARS = 100_000


def check_options(args) -> None:
    """Every option the model cannot take is refused before any work (exit 2)."""
    if not STEPS[0] <= args.steps <= STEPS[1]:
        raise BadInput(None, f"--steps {args.steps} outside [{STEPS[0]}, {STEPS[1]}]")
    if not (math.isfinite(args.cfg_scale) and 0 < args.cfg_scale <= MAX_CFG):
        raise BadInput(None, f"--cfg-scale {args.cfg_scale} outside (0, {MAX_CFG:g}]")
    if not 0 <= args.seed <= MAX_SEED:
        raise BadInput(None, f"--seed {args.seed} outside [0, 2**64-1]")
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise BadInput(None, f"--seconds {args.seconds} must be a finite number > 0")
    if args.prompt_ids is None:
        if len(args.prompt) > MAX_PROMPT_CHARS:
            raise BadInput(None, f"--prompt holds {len(args.prompt)} characters, more than "
                                 f"{MAX_PROMPT_CHARS}")
        try:
            args.prompt.encode("utf-8")
        except UnicodeEncodeError:  # undecodable argv bytes arrive as lone surrogates
            raise BadInput(None, "--prompt is not valid UTF-8 text") from None


def parse_ids(text: str, max_length: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise BadInput(None, f"--prompt-ids must be comma-separated integers, got {text!r}") from None
    if not ids or len(ids) > max_length:
        raise BadInput(None, f"--prompt-ids needs 1..{max_length} ids, got {len(ids)}")
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise BadInput(None, f"--prompt-ids: id {bad[0]} outside [0, {vocab_size}) (the T5 "
                             "vocabulary)")
    out = np.zeros((1, max_length), np.int32)
    out[0, : len(ids)] = ids
    mask = (np.arange(max_length) < len(ids)).astype(np.int32)[None]
    return out, mask


def cmd_generate(args) -> int:
    from harness.audio import io  # through the module: the I/O mutants patch write_wav
    from harness.blas import blas_advice
    from harness.model.tokenizer import Tokenizer
    from harness.progress import progress
    from harness.provenance import provenance
    from harness.weights.load import load_model
    from harness.weights.synth import default_checkpoint

    io.check_writable(args.out)
    check_options(args)
    progress("loading weights")
    model, ckpt = load_model(args.weights or default_checkpoint("tiny"))
    cfg = ckpt.config
    length = cfg.sample_size / cfg.sample_rate
    seconds = args.seconds if args.seconds is not None else min(11.0, length)
    if not 0 < seconds <= length:
        raise BadInput(None, f"--seconds {seconds} outside (0, {length:.3f}] for this model")
    if args.prompt_ids is not None:
        ids, mask = parse_ids(args.prompt_ids, cfg.max_length, cfg.t5.vocab_size)
    else:
        if ckpt.spiece is None or not ckpt.spiece.exists():
            raise BadInput(ckpt.root, "no t5/spiece.model: give --prompt-ids instead of --prompt")
        ids, mask = Tokenizer.from_file(ckpt.spiece).encode([args.prompt], cfg.max_length)
        if ids.max() >= cfg.t5.vocab_size:
            raise BadInput(ckpt.spiece, f"the tokenizer gives id {int(ids.max())}, outside the "
                                        f"T5 vocabulary [0, {cfg.t5.vocab_size})")
    gen = model.generate(ids, mask, seconds, steps=args.steps, sampler=args.sampler,
                         cfg_scale=args.cfg_scale, seed=args.seed, progress=progress)
    n = io.write_wav(args.out, gen.audio, cfg.sample_rate, seconds)
    result = {"out": str(args.out), "weights": str(ckpt.model_file), "preset": cfg.preset,
              "samples": n, "sample_rate": cfg.sample_rate, "seconds_total": seconds,
              "timings_s": {k: round(v, 4) for k, v in gen.timings.items()},
              "step_times_s": [round(s, 4) for s in gen.step_times], "blas": blas_advice(),
              "provenance": provenance()}
    if args.json:
        emit(args, result, passed=True)
    else:
        print(f"wrote {args.out}: {n} samples ({seconds} s) stereo float WAV from {cfg.preset} "
              f"checkpoint {ckpt.model_file}")
        for stage, t in result["timings_s"].items():
            print(f"  {stage:<12} {t:8.3f} s")
        print("  per step     " + " ".join(f"{s:.3f}" for s in result["step_times_s"]))
        if result["blas"]:
            print(f"note: {result['blas']}")
    return 0
