"""`sao-harness generate`: text (or token ids) -> WAV, with per-stage timings."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from harness.device import add_device_argument
from harness.errors import BadInput


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate audio with the bundled MLX model")
    p.add_argument("--weights", type=Path, default=None,
                   help="checkpoint dir or model.safetensors (default: seeded tiny checkpoint)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--prompt", default="128 BPM tech house drum loop")
    g.add_argument("--prompt-ids", default=None,
                   help="comma-separated T5 token ids (EOS included), bypassing the tokenizer")
    p.add_argument("--seconds", type=float, default=None,
                   help="seconds_total (default: 11, or the model's length if shorter)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--sampler", choices=("pingpong", "euler"), default="pingpong")
    p.add_argument("--cfg", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=99)
    p.add_argument("--out", type=Path, required=True, help="output .wav")
    p.add_argument("--json", action="store_true")
    add_device_argument(p)
    p.set_defaults(func=cmd_generate)


def parse_ids(text: str, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise BadInput(None, f"--prompt-ids must be comma-separated integers, got {text!r}") from None
    if not ids or len(ids) > max_length or min(ids) < 0:
        raise BadInput(None, f"--prompt-ids needs 1..{max_length} non-negative ids, got {len(ids)}")
    out = np.zeros((1, max_length), np.int32)
    out[0, : len(ids)] = ids
    mask = (np.arange(max_length) < len(ids)).astype(np.int32)[None]
    return out, mask


def check_writable(path: Path) -> None:
    """Fail before any model work when the output cannot be written."""
    if path.is_dir():
        raise BadInput(path, "cannot write: is a directory")
    if not os.access(path.parent, os.W_OK) or not path.parent.is_dir():
        raise BadInput(path, "cannot write: directory missing or not writable")
    if path.suffix.lower() != ".wav":
        raise BadInput(path, "output must be a .wav file")


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, seconds: float) -> int:
    """Planar (C, N) -> interleaved float WAV trimmed to seconds·rate; atomic. -> samples written."""
    from harness.audio.io import save

    n = int(round(seconds * sample_rate))
    if n > audio.shape[1]:
        raise BadInput(path, f"{seconds} s needs {n} samples, the model made {audio.shape[1]}")
    check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent,
                                   prefix=f".{path.stem}.", suffix=".wav")
        os.close(fd)
    except OSError as e:
        raise BadInput(path, f"cannot write: {e.strerror or e}") from None
    try:
        save(tmp, audio[:, :n], sample_rate, subtype="FLOAT")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def cmd_generate(args) -> int:
    from harness.blas import blas_advice
    from harness.model.tokenizer import Tokenizer
    from harness.provenance import provenance
    from harness.weights.load import load_model
    from harness.weights.synth import default_checkpoint

    check_writable(args.out)
    if args.steps < 1 or args.cfg <= 0:
        raise BadInput(None, "--steps must be >= 1 and --cfg > 0")
    model, ckpt = load_model(args.weights or default_checkpoint("tiny"))
    cfg = ckpt.config
    length = cfg.sample_size / cfg.sample_rate
    seconds = args.seconds if args.seconds is not None else min(11.0, length)
    if not 0 < seconds <= length:
        raise BadInput(None, f"--seconds {seconds} outside (0, {length:.3f}] for this model")
    if args.prompt_ids is not None:
        ids, mask = parse_ids(args.prompt_ids, cfg.max_length)
    else:
        if ckpt.spiece is None or not ckpt.spiece.exists():
            raise BadInput(ckpt.root, "no t5/spiece.model: give --prompt-ids instead of --prompt")
        ids, mask = Tokenizer.from_file(ckpt.spiece).encode([args.prompt], cfg.max_length)
    gen = model.generate(ids, mask, seconds, steps=args.steps, sampler=args.sampler,
                         cfg_scale=args.cfg, seed=args.seed)
    n = write_wav(args.out, gen.audio, cfg.sample_rate, seconds)
    result = {"out": str(args.out), "weights": str(ckpt.model_file), "preset": cfg.preset,
              "samples": n, "sample_rate": cfg.sample_rate, "seconds_total": seconds,
              "timings_s": {k: round(v, 4) for k, v in gen.timings.items()},
              "step_times_s": [round(s, 4) for s in gen.step_times], "blas": blas_advice(),
              "provenance": provenance()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"wrote {args.out}: {n} samples ({seconds} s) stereo float WAV from {cfg.preset} "
              f"checkpoint {ckpt.model_file}")
        for stage, t in result["timings_s"].items():
            print(f"  {stage:<12} {t:8.3f} s")
        print("  per step     " + " ".join(f"{s:.3f}" for s in result["step_times_s"]))
        if result["blas"]:
            print(f"note: {result['blas']}")
    return 0
