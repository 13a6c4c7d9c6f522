"""`python -m harness.reference.peer_timing`: time the peers of the MLX model on the bench's inputs.

Runs in the reference venv (torch, stable-audio-tools, litert-torch, ai-edge-litert);
`sao-harness bench` calls it as a subprocess and prints its rows next to the MLX ones.
Peers, both fp32 on CPU, same machine, same inputs (`harness.bench.plan.fixed_inputs`):
  torch   the official PyTorch model (`build.load_reference`), torch's default threads
  litert  its LiteRT export (`litert.wrappers` + `litert.sample_kwargs`, the golden recorder's
          export path), run by the Interpreter's default XNNPACK delegate, fp32
Exports are slow (full DiT ~40 s, ~1.3 GB) and cached under --cache-dir, keyed by the
checkpoint's file hashes, the export library version and the frame count. The LiteRT VAE is
exported with weight norm folded into plain weights, as a deployment ships it (the package
computes w = g·v/‖v‖ in every forward, which in a .tflite graph makes every conv weight a
computed tensor that XNNPACK cannot pre-pack; tiny VAE at 256 frames: 7.8 ms -> 3.4 ms).
The torch peer runs the package's code as is.
Stdout: one JSON object {"rows": [...], "threads": {...}, "versions": {...}}; progress on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

from harness.bench.plan import PEER_STAGES, VAE_FRAMES, fixed_inputs, rounds_for, stage_frames
from harness.bench.runner import Row, max_rss_mb, timing_row
from harness.errors import BadInput
from harness.model.config import ModelConfig, T5Config
from harness.reference.build import load_reference
from harness.reference.litert import Conditioners, sample_kwargs, wrappers
from harness.reference.tflite import bind
from harness.settings import cache_root

ROLE = {"dit": "dit", "vae_decode": "autoencoder", "vae_decode_short": "autoencoder"}


def log(msg: str) -> None:
    print(f"[peer_timing] {msg}", file=sys.stderr, flush=True)


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def export_key(ckpt) -> str:
    h = hashlib.sha256(json.dumps(sorted(ckpt.sha256.items())).encode())
    h.update(_version("litert-torch").encode())
    return h.hexdigest()[:16]


def export_cached(model, role: str, frames: int, max_length: int, cache_dir: Path,
                  key: str) -> Path:
    """One .tflite file (fp32, batch 1, `frames` latents); made once per key."""
    path = cache_dir / f"{key}-{role}-{frames}f{'-foldedwn' if role == 'autoencoder' else ''}.tflite"
    if path.is_file():
        return path
    import litert_torch

    cache_dir.mkdir(parents=True, exist_ok=True)
    log(f"exporting {role} at {frames} frames to {path} (cached for later runs)")
    logging.getLogger().setLevel(logging.ERROR)
    module = wrappers(model, max_length)[role]
    if role == "autoencoder":
        fold_weight_norm(module)  # in place: the torch peer has been timed already
    kwargs = sample_kwargs(model, frames, max_length)[role]
    with torch.no_grad():
        edge = litert_torch.convert(module, sample_kwargs=kwargs, enable_x64=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        edge.export(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def fold_weight_norm(module: torch.nn.Module) -> torch.nn.Module:
    """Replace every (old-style) weight-norm hook by its current weight: same values."""
    for m in module.modules():
        if hasattr(m, "weight_g") and hasattr(m, "weight_v"):
            torch.nn.utils.remove_weight_norm(m)
    return module


class LiteRTCall:
    """A bound interpreter: feeds fixed inputs by name/shape, invoke, copy the output."""

    def __init__(self, path: Path, feeds: dict[str, np.ndarray], threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=threads)  # default: XNNPACK
        self.it.allocate_tensors()
        details = self.it.get_input_details()
        if len(feeds) == 1:  # the autoencoder's single latent input
            bound = {next(iter(feeds)): details[0]}
        else:
            bound = bind(details, {k: v.shape for k, v in feeds.items()}, path)
        self.feeds = [(bound[k]["index"], v.astype(bound[k]["dtype"])) for k, v in feeds.items()]
        self.out = self.it.get_output_details()[0]["index"]

    def __call__(self) -> np.ndarray:
        for index, value in self.feeds:
            self.it.set_tensor(index, value)
        self.it.invoke()
        return self.it.get_tensor(self.out).copy()


def stage_inputs(model, cfg: ModelConfig, stage: str, frames: int) -> dict[str, np.ndarray]:
    """The MLX stage's inputs: conditioning from the official conditioner on the fixed ids."""
    inp = fixed_inputs(cfg, frames)
    if stage != "dit":
        return {"latents": inp.noise}
    cond = Conditioners(model, cfg.max_length).eval()
    with torch.no_grad():
        out = cond(torch.from_numpy(inp.input_ids), torch.from_numpy(inp.attention_mask),
                   torch.from_numpy(inp.seconds_total))
    return {"x": inp.noise, "t": np.ones((1,), np.float32),
            "cross_attn_cond": out["cross_attention_input"].numpy(),
            "global_cond": out["global_cond"].numpy()}


def torch_call(model, cfg: ModelConfig, stage: str, feeds: dict[str, np.ndarray]):
    module = wrappers(model, cfg.max_length)[ROLE[stage]]
    args = {k: torch.from_numpy(v) for k, v in feeds.items()}

    def call():
        with torch.inference_mode():
            return module(**args)
    return call


def run(args) -> dict:
    model, ckpt = load_reference(args.checkpoint)
    ckpt.weights.clear()  # the numpy copies (GBs at full size) are in the model now
    ckpt.t5_weights.clear()
    cfg = ModelConfig.from_official(ckpt.config, T5Config.from_hf(ckpt.t5_config))
    preset = ckpt.preset
    threads = args.threads or os.cpu_count() or 1
    key = export_key(ckpt)
    feeds = {s: stage_inputs(model, cfg, s, stage_frames(s, cfg, args.vae_frames))
             for s in args.stages}
    rows: list[Row] = []
    torch_out: dict[str, np.ndarray] = {}
    # All torch rows before any LiteRT export: exporting the VAE folds its weight norm in place.
    for impl in [i for i in ("torch", "litert") if i in args.impls]:
        for stage in args.stages:
            frames = stage_frames(stage, cfg, args.vae_frames)
            warmup, rounds = rounds_for(preset, stage)
            log(f"{impl} {stage} ({frames} frames, {warmup}+{rounds} rounds)")
            try:
                if impl == "torch":
                    fn = torch_call(model, cfg, stage, feeds[stage])
                else:
                    path = export_cached(model, ROLE[stage], frames, cfg.max_length,
                                         args.cache_dir, key)
                    fn = LiteRTCall(path, feeds[stage], threads)
                row, out = timing_row(stage, impl, preset, fn, rounds, warmup, frames)
                out = np.asarray(out, dtype=np.float64).ravel()
                if impl == "torch":
                    torch_out[stage] = out
                elif stage in torch_out:  # same inputs, same weights: same output?
                    ref = torch_out[stage]
                    row.extra["max_abs_diff_vs_torch_rel"] = float(
                        np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
                rows.append(row)
                del fn
            except Exception as e:  # one failing peer must not hide the others' rows
                traceback.print_exc(file=sys.stderr)
                rows.append(Row(stage, impl, preset, frames=frames,
                                note=f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"))
    return {"rows": [r.as_dict() for r in rows],
            "threads": {"torch": torch.get_num_threads(), "litert": threads},
            "max_rss_mb": round(max_rss_mb(), 1),
            "versions": {p: _version(p) for p in ("torch", "stable-audio-tools", "litert-torch",
                                                    "ai-edge-litert")}}


def default_cache_dir() -> Path:
    root = cache_root()
    return root / "litert-exports"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.reference.peer_timing")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--stages", default=",".join(PEER_STAGES),
                   type=lambda s: [x for x in s.split(",") if x])
    p.add_argument("--impls", default="torch,litert", type=lambda s: [x for x in s.split(",") if x])
    p.add_argument("--vae-frames", type=int, default=VAE_FRAMES)
    p.add_argument("--threads", type=int, default=None, help="LiteRT threads (default: all cores)")
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    args = p.parse_args(argv)
    bad = [s for s in args.stages if s not in PEER_STAGES] + \
          [i for i in args.impls if i not in ("torch", "litert")]
    if bad:
        print(f"peer_timing: error: unknown stage or impl {bad[0]!r}", file=sys.stderr)
        return 2
    try:
        with contextlib.redirect_stdout(sys.stderr):  # the package prints notices on import
            result = run(args)
    except BadInput as e:
        print(f"peer_timing: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
