"""`python -m harness.reference.record ...`: record one golden case with the reference.

Runs in the reference venv (torch, stable-audio-tools, LiteRT); `sao-harness golden record`
calls it in a subprocess when the current env has no torch. Writes golden/<case>/ atomically.
Argument definitions live here (torch-free imports) so the CLI forwards them unchanged.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from harness.errors import BadInput
from harness import settings
from harness.host import cpu_model
from harness.golden.inputs import DEFAULT_LENGTHS, DEFAULT_SECONDS
from harness.progress import progress

TOLERANCE_CLASS = {"torch": "torch-fp32", "litert": "litert-fp32", "arm-tflite": "arm-tflite"}


def add_record_arguments(p: argparse.ArgumentParser) -> None:
    from harness.golden.store import DEFAULT_ROOT

    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", metavar="DIR", help="checkpoint directory (official layout; "
                                                      "default: --synth)")
    src.add_argument("--synth", metavar="PRESET[:SEED]",
                     help="record from harness.weights.synth.write_checkpoint(PRESET, SEED) "
                          "(default: --weights)")
    p.add_argument("--producer", choices=sorted(TOLERANCE_CLASS), default="torch",
                   help="the reference that records (default: %(default)s)")
    p.add_argument("--arm-dir", metavar="DIR", help="Arm TFLite directory (producer arm-tflite; "
                                                    "default: none)")
    p.add_argument("--case", required=True, help="golden case name (directory under "
                                                 "--golden-dir)")
    p.add_argument("--golden-dir", default=str(DEFAULT_ROOT),
                   help="golden store (default: %(default)s)")
    p.add_argument("--frames", type=int, default=32, help="latent frames T (default: %(default)s)")
    p.add_argument("--steps", type=int, default=8, help="sampler steps (default: %(default)s)")
    p.add_argument("--sampler", choices=("pingpong", "euler"), default="pingpong",
                   help="sampler (default: %(default)s)")
    p.add_argument("--cfg-scale", type=float, default=1.0,
                   help="classifier-free guidance scale (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="numpy seed of token ids and noise (default: %(default)s)")
    p.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)),
                   help="real-token count (EOS included) of each prompt, comma-separated "
                        "(default: %(default)s)")
    p.add_argument("--seconds", default=",".join(map(str, DEFAULT_SECONDS)),
                   help="seconds_total of each prompt, comma-separated (default: %(default)s)")
    p.add_argument("--vocab-size", type=int, default=None,
                   help="draw token ids below this (default: the T5 config's; arm-tflite: 32128)")
    p.add_argument("--detail", choices=("all", "long", "dit", "boundaries"), default="all",
                   help="every intermediate; `long`: boundaries plus block 0's q/k path and the "
                        "decode's input and output (for long inputs); `dit`: boundaries plus the "
                        "T5 blocks and the DiT intermediates (full-size goldens); `boundaries`: "
                        "conditioner outputs, sampler steps and audio (default: %(default)s)")
    p.add_argument("--dit-steps", type=int, default=None,
                   help="record the DiT's intermediates at the first N sampler steps "
                        "(default: every step)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing case (default: refuse)")


def _versions(producer: str) -> dict[str, str]:
    pkgs = ["torch", "stable-audio-tools", "transformers", "numpy", "safetensors"]
    if producer != "torch":
        pkgs += ["litert-torch", "ai-edge-litert"]
    out = {"python": platform.python_version()}
    for name in pkgs:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BadInput(None, f"--{what} must be comma-separated numbers, got {text!r}") from None


def run(args) -> Path:
    from harness.golden.store import build_manifest, write_golden
    from harness.reference.checkpoint import read_checkpoint
    from harness.golden.inputs import make_inputs

    if args.dit_steps is not None and args.dit_steps < 0:
        raise BadInput(None, f"--dit-steps must be >= 0, got {args.dit_steps}")
    lengths = [int(v) for v in _floats(args.lengths, "lengths")]
    seconds = _floats(args.seconds, "seconds")
    if args.producer == "arm-tflite":
        return _run_arm(args, lengths, seconds)
    with tempfile.TemporaryDirectory(prefix="sao-record-") as tmp:
        ckpt_dir = args.weights
        synth = None
        if args.synth:
            from harness.weights.synth import write_checkpoint

            from harness.model.config import PRESETS

            preset, _, seed = args.synth.partition(":")
            if preset not in PRESETS or not (seed or "0").isdigit():
                raise BadInput(None, f"--synth {args.synth!r}: expected PRESET[:SEED] with "
                                     f"PRESET one of {sorted(PRESETS)}")
            synth = {"preset": preset, "seed": int(seed or 0)}
            ckpt_dir = write_checkpoint(preset, synth["seed"], Path(tmp) / "checkpoint")
        if not ckpt_dir:
            raise BadInput(None, "give --weights DIR or --synth PRESET[:SEED]")
        ckpt = read_checkpoint(ckpt_dir)
        cond_cfg = {c["id"]: c for c in ckpt.config["model"]["conditioning"]["configs"]}
        max_length = int(cond_cfg["prompt"]["config"].get("max_length", 128))
        inputs = _inputs(make_inputs, seed=args.seed,
                         io_channels=int(ckpt.config["model"]["io_channels"]), frames=args.frames,
                         steps=args.steps, max_length=max_length,
                         vocab_size=args.vocab_size or int(ckpt.t5_config["vocab_size"]),
                         lengths=lengths, seconds=seconds)
        tensors = _record_reference(args, ckpt, inputs, max_length, Path(tmp))
        settings = _settings(args, inputs)
        manifest = build_manifest(
            args.case, args.producer, tensors, TOLERANCE_CLASS[args.producer],
            versions=_versions(args.producer), settings=settings,
            host={"machine": platform.machine(), "cpu": cpu_model()},
            weights={"synth": synth, "sha256": ckpt.sha256, "preset": ckpt.preset},
            config=ckpt.config, t5_config=ckpt.t5_config)
        return write_golden(args.golden_dir, args.case, tensors, manifest, overwrite=args.force)


def _inputs(make_inputs, **kwargs):
    if kwargs["frames"] < 1 or kwargs["steps"] < 1:
        raise BadInput(None, "--frames and --steps must be at least 1")
    try:
        return make_inputs(**kwargs)
    except ValueError as e:  # prompt lengths / seconds that do not fit
        raise BadInput(None, str(e)) from None


def _settings(args, inputs) -> dict:
    return {"steps": args.steps, "sampler": args.sampler, "cfg_scale": args.cfg_scale,
            "frames": args.frames, "batch": inputs.batch, "seed": args.seed,
            "prompt_lengths": [int(v) for v in inputs.attention_mask.sum(axis=1)],
            "seconds_total": [float(v) for v in inputs.seconds_total],
            "detail": args.detail,
            "dit_intermediates_steps": args.steps if args.dit_steps is None
            else min(args.dit_steps, args.steps),
            "dit_intermediates_batch": "B" if args.cfg_scale == 1.0 else "2B: cond then uncond",
            "noise": "numpy default_rng(seed): ids, then noise (B,C,T), then step_noise (S,B,C,T)",
            "precision": "fp32 everywhere (the package runs T5 and the VAE in fp16)"}


def _record_reference(args, ckpt, inputs, max_length: int, tmp: Path):
    from harness.reference import record_torch
    from harness.reference.build import build_model, load_strict

    progress("building the official model")
    try:
        model = build_model(ckpt.config, ckpt.t5_config)
    except (KeyError, TypeError, AssertionError, ValueError) as e:
        raise BadInput(ckpt.root / "model_config.json",
                       f"the official factory rejects this config ({type(e).__name__}: {e})") from None
    load_strict(model, ckpt)
    if args.cfg_scale != 1.0 and args.producer != "torch":
        raise BadInput(None, "LiteRT recordings use the Arm signatures, which have no CFG: "
                             "use --cfg-scale 1")
    progress(f"recording torch: {args.steps} {args.sampler} steps, detail {args.detail}")
    torch_tensors = record_torch.record(model, inputs, steps=args.steps, sampler=args.sampler,
                                        cfg_scale=args.cfg_scale, detail=args.detail,
                                        dit_steps=args.dit_steps)
    if args.producer == "torch":
        return torch_tensors
    from harness.reference import litert

    progress("exporting to LiteRT and recording")
    return litert.record(model, inputs, torch_tensors, tmp / "tflite", steps=args.steps,
                         sampler=args.sampler, max_length=max_length)


def _run_arm(args, lengths, seconds) -> Path:
    """A user's real Arm TFLite directory: boundaries only (its intermediates carry Arm's
    names and int8 weights). Latent shape from the files; 64 T5 tokens (padded to 128)."""
    from harness.golden.store import build_manifest, write_golden
    from harness.weights.load import sha256_file
    from harness.golden.inputs import make_inputs
    from harness.reference.tflite import ARM_FILES, Pipeline, run_pipeline

    if not args.arm_dir:
        raise BadInput(None, "--producer arm-tflite needs --arm-dir DIR")
    pipe = Pipeline.from_dir(args.arm_dir)
    x = pipe.latent_shape()
    from harness.model.config import FULL

    inputs = _inputs(make_inputs, seed=args.seed, io_channels=x[1], frames=x[2], steps=args.steps,
                         max_length=FULL.max_length,
                         vocab_size=args.vocab_size or FULL.t5.vocab_size,
                         lengths=lengths, seconds=seconds)
    tensors = run_pipeline(pipe, inputs, steps=args.steps, sampler=args.sampler)
    root = Path(args.arm_dir)
    manifest = build_manifest(
        args.case, "arm-tflite", tensors, TOLERANCE_CLASS["arm-tflite"],
        versions=_versions("arm-tflite"), settings={**_settings(args, inputs), "frames": x[2],
                                                    "detail": "boundaries"},
        weights={"sha256": {f: sha256_file(root / f) for f in ARM_FILES.values()}})
    return write_golden(args.golden_dir, args.case, tensors, manifest, overwrite=args.force)


def _quiet() -> None:
    """The reference stack logs a lot on import (oneDNN, torchao, pytree); keep errors only."""
    import logging
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("torch", "torch.utils._pytree", "transformers", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def main(argv: list[str] | None = None) -> int:
    from harness.reference import clean_env, foreign_blas_loaded

    if foreign_blas_loaded() and argv is None and not settings.in_clean_reexec():
        # Restart once without the OpenBLAS preload: torch must use its own (pinned) MKL.
        env = dict(clean_env(os.environ), **settings.CLEAN_REEXEC)
        os.execve(sys.executable, [sys.executable, "-m", "harness.reference.record",
                                   *sys.argv[1:]], env)
    if foreign_blas_loaded():
        print("sao-harness: error: OpenBLAS is preloaded (LD_PRELOAD); torch's MKL sgemm would "
              "be replaced and the recording would not be reproducible", file=sys.stderr)
        return 2
    _quiet()
    p = argparse.ArgumentParser(prog="python -m harness.reference.record",
                                description=__doc__.splitlines()[0])
    add_record_arguments(p)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        path = run(args)
    except BadInput as e:
        print(f"sao-harness: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"case": args.case, "path": str(path)}))
    else:
        print(f"recorded {args.case} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
