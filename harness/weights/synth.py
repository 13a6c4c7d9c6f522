"""Seeded synthetic checkpoints in the exact official layout (no download needed).

Directory written:
    model_config.json     official stable-audio-tools config (plus the preset name)
    model.safetensors     official names; DiT and conditioner F32, VAE F16
    t5/config.json        Hugging Face T5Config
    t5/model.safetensors  Hugging Face T5EncoderModel names (F32; embed_tokens tied to shared)
    t5/spiece.model       the small real sentencepiece model shipped in harness/weights/data

Every tensor is drawn from its own PCG64 stream keyed by (seed, sha256(name)), through
`random_raw` (a bit stream numpy guarantees) and IEEE arithmetic only, so the bytes are the
same on every run and machine. No tensor is left at zero: the official package zero-inits
274 output projections, and zero weights make a comparison blind.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.files import atomic_dir
from harness.model import prefixes
from harness.model.config import PRESETS, ModelConfig
from harness.weights.safetensors_io import write_safetensors
from harness.weights.validate import expected_checkpoint, expected_t5
from harness.settings import cache_root

NP_DTYPE = {"F32": np.float32, "F16": np.float16}
# Bump when the bytes for a (preset, seed) change: cached default checkpoints are keyed by it,
# and goldens recorded from the old bytes must be re-recorded (their manifests pin sha256).
SYNTH_VERSION = 2


def _uniform(seed: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform in [-1, 1) as float64, from a portable bit stream."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    bits = np.random.PCG64(np.random.SeedSequence([seed, key])).random_raw(math.prod(shape))
    return ((bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -52 - 1.0).reshape(shape)


def _init(name: str, shape: tuple[int, ...], u: np.ndarray) -> np.ndarray:
    """Values with a sensible scale for the role the tensor plays (uniform, std s: u·√3·s)."""
    param = name.rsplit(".", 1)[-1]
    if name.endswith("rotary_pos_emb.inv_freq"):  # a fixed buffer, not a parameter
        dim = 2 * shape[0]  # float64 pow (correctly rounded in practice), then cast: portable
        return 1.0 / (10000.0 ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    if param in ("alpha", "beta") and "norm" not in name:  # snake, log-scale: exp() near 1
        return 0.3 * u
    if param == "weight_g":
        return 1.0 + 0.25 * u  # positive per-channel norms near 1
    if param in ("gamma",) or (param == "weight" and ("norm" in name or "layer_norm" in name)):
        return 1.0 + 0.1 * u
    if param in ("beta", "bias"):
        return 0.05 * u
    if name.endswith("embedding.0.weights") or name.endswith("timestep_features.weight"):
        return math.sqrt(3.0) * u  # Fourier frequencies drawn N(0, 1)-like in the original
    if name.endswith("relative_attention_bias.weight"):
        return math.sqrt(3.0) * 0.5 * u
    if name == "shared.weight":
        return math.sqrt(3.0) * u
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
    return math.sqrt(3.0 / fan_in) * u  # weights and weight_v: unit gain per layer


# The decoder's output conv gets small norms so synthetic audio lands near RMS 0.1
# instead of clipping (unit-gain layers leave the tiny decoder at RMS ~17).
OUTPUT_CONV_G = re.compile(re.escape(prefixes.DECODER) + r"\.layers\.(\d+)\.weight_g$")
OUTPUT_GAIN = 0.006


def synth_tensors(seed: int, specs: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out_conv = max((k for k in specs if OUTPUT_CONV_G.match(k)),
                   key=lambda k: int(OUTPUT_CONV_G.match(k).group(1)), default=None)
    out = {}
    for name, spec in specs.items():
        v = np.asarray(_init(name, spec.shape, _uniform(seed, prefix + name, spec.shape)))
        if name == out_conv:
            v = v * OUTPUT_GAIN
        out[name] = v.astype(NP_DTYPE[spec.dtype])
    return out


def spiece_bytes() -> bytes:
    return resources.files("harness.weights.data").joinpath("spiece.model").read_bytes()


def write_checkpoint(preset: str | ModelConfig, seed: int, out_dir: str | Path,
                     progress=None) -> Path:
    """Write a complete checkpoint directory atomically (temp dir, then rename);
    `progress(message)` hears of each file."""
    progress = progress or (lambda message: None)
    cfg = PRESETS[preset] if isinstance(preset, str) else preset
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BadInput(out_dir, "exists and is not empty; refusing to overwrite")
    try:
        # A temporary directory renamed into place: an interrupted write (SIGTERM and SIGINT
        # included, see harness.cli) leaves nothing behind, a finished one is complete.
        with atomic_dir(out_dir) as tmp:
            progress("model.safetensors (conditioner, DiT, VAE)")
            write_safetensors(tmp / "model.safetensors",
                              synth_tensors(seed, expected_checkpoint(cfg)))
            (tmp / "model_config.json").write_text(json.dumps(cfg.to_official(), indent=2) + "\n")
            t5 = tmp / "t5"
            t5.mkdir()
            progress("t5/model.safetensors, config, tokenizer")
            write_safetensors(t5 / "model.safetensors",
                              synth_tensors(seed, expected_t5(cfg.t5), prefix="t5."))
            (t5 / "config.json").write_text(json.dumps(cfg.t5.to_hf(), indent=2) + "\n")
            (t5 / "spiece.model").write_bytes(spiece_bytes())
    except FileExistsError:
        raise BadInput(out_dir, "exists and is not empty; refusing to overwrite") from None
    return out_dir


def default_checkpoint(preset: str = "tiny", seed: int = 0) -> Path:
    """The seeded checkpoint used when no --weights is given, made once in the user cache."""
    root = cache_root()
    path = root / f"{preset}-seed{seed}-synth{SYNTH_VERSION}"
    if not (path / "model.safetensors").exists():
        try:
            write_checkpoint(preset, seed, path)
        except BadInput:
            # Another process won the race: its directory was renamed into place complete.
            if not (path / "model.safetensors").exists():
                raise
    return path
