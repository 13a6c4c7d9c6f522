"""Arm-layout TFLite files from a checkpoint, quantized as Arm ships them, for `weights extract`.

Needs the reference venv (torch, stable-audio-tools, litert-torch). The three modules are the
ones `harness.reference.litert` exports (Arm's split, official submodule names); each can be
written fp32, int8 (Arm's DiT recipe: dynamic-range int8 weights, per channel), int8 weight-only
(int8 constants behind DEQUANTIZE ops) or fp16 weight-only (fp16 constants behind DEQUANTIZE).

    VENV/bin/python -m harness.reference.export_for_extract CKPT OUT_DIR --dit int8
    VENV/bin/python -m harness.reference.export_for_extract --micro OUT_DIR --seed 0 ...

`--micro` writes the small seeded checkpoint whose export is committed as a test fixture
(suites/weights/data/tflite-micro) and exports that.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from harness.model.config import DiTConfig, ModelConfig, T5Config, VAEConfig

QUANT = ("fp32", "int8", "int8-weight-only", "fp16")


def micro_config() -> ModelConfig:
    """Smaller than tiny so its three .tflite files stay well under 1 MB each, with two DiT
    blocks (block indices must be told apart) and two decoder blocks."""
    return ModelConfig(
        preset="micro", sample_size=4096, cond_dim=32,
        t5=T5Config(vocab_size=256, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4),
        dit=DiTConfig(io_channels=4, embed_dim=64, depth=2, num_heads=1, cond_token_dim=32,
                      global_cond_dim=32),
        vae=VAEConfig(channels=4, c_mults=(1, 2), strides=(2, 4), latent_dim=4))


def quant_config(kind: str):
    if kind == "fp32":
        return None
    from litert_torch.generative.quantize import quant_recipe, quant_recipe_utils
    from litert_torch.quantize import quant_config as qc

    layer = {"int8": quant_recipe_utils.create_layer_quant_dynamic,  # Arm's DiT recipe
             "int8-weight-only": quant_recipe_utils.create_layer_quant_weight_only,
             "fp16": quant_recipe_utils.create_layer_quant_fp16}[kind]()
    return qc.QuantConfig(generative_recipe=quant_recipe.GenerativeQuantRecipe(default=layer))


def export(model, out_dir: str | Path, quant: dict[str, str], frames: int = 16,
           max_length: int = 64) -> dict[str, Path]:
    """Write each role in `quant` ({role: kind}) under Arm's file name. Returns role -> path."""
    import litert_torch
    import torch

    from harness.reference.litert import sample_kwargs, wrappers
    from harness.reference.tflite import ARM_FILES

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = sample_kwargs(model, frames, max_length)
    modules = wrappers(model, max_length)
    logging.getLogger().setLevel(logging.ERROR)
    paths = {}
    for role, kind in quant.items():
        with torch.no_grad():
            edge = litert_torch.convert(modules[role], sample_kwargs=kwargs[role], enable_x64=True,
                                        quant_config=quant_config(kind))
        paths[role] = out_dir / ARM_FILES[role]
        edge.export(str(paths[role]))
    return paths


def quantize_file(src: str | Path, dst: str | Path, kind: str = "int8") -> Path:
    """Quantize an fp32 .tflite with the recipe `export` uses, in a process that no longer holds
    the torch model (the full DiT's in-process quantization needs more than 11 GB)."""
    from litert_torch.quantize.translate_recipe import (quantize_model,
                                                        translate_to_ai_edge_recipe)

    recipe = translate_to_ai_edge_recipe(quant_config(kind).generative_recipe)
    Path(dst).write_bytes(quantize_model(Path(src).read_bytes(), recipe))
    return Path(dst)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--micro", action="store_true", help="synthesize the micro checkpoint first")
    p.add_argument("--seed", type=int, default=0)
    for role, default in (("conditioners", "fp32"), ("dit", "int8"), ("autoencoder", "fp32")):
        p.add_argument(f"--{role}", choices=QUANT + ("none",), default=default)
    p.add_argument("--frames", type=int, default=16)
    args = p.parse_args(argv)

    from harness.reference.build import load_reference
    from harness.weights.load import sha256_file
    from harness.weights.synth import write_checkpoint

    if args.micro:  # the fixture keeps the configs; the checkpoint is re-made from the seed
        args.checkpoint = write_checkpoint(micro_config(), args.seed, args.out / ".checkpoint")
    elif args.checkpoint is None:
        p.error("give a checkpoint or --micro")
    model, _ = load_reference(args.checkpoint)
    quant = {r: k for r in ("conditioners", "dit", "autoencoder")
             if (k := getattr(args, r)) != "none"}
    paths = export(model, args.out, quant, frames=args.frames)
    source = {"checkpoint_sha256": sha256_file(args.checkpoint / "model.safetensors"),
              "seed": args.seed, "quant": quant, "frames": args.frames,
              "files": {r: p.name for r, p in paths.items()}}
    (args.out / "source.json").write_text(json.dumps(source, indent=2) + "\n")
    if args.micro:
        (args.out / "t5").mkdir(exist_ok=True)
        for f in ("model_config.json", "t5/config.json"):
            shutil.copyfile(args.checkpoint / f, args.out / f)
        shutil.rmtree(args.checkpoint)
    print(json.dumps(source, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
