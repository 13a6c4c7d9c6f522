"""The port adapter protocol: what a port author implements so sao-harness can test THEIR port.

An adapter is a class (subclass `Port`, or duck-type it) whose methods take and return numpy
arrays in the official PyTorch layout. Every stage is optional: a stage the adapter does not
define, or one that raises `NotCovered`, is reported "not covered", never a pass.

Shapes (B batch, L = 64 prompt tokens, D = cond dim (768; 64 on the tiny synth), C latent
channels (64; 8 on tiny), T latent frames, N = T * downsampling ratio audio samples):

| method | takes | returns |
|---|---|---|
| `load(checkpoint_dir)` | dir with model.safetensors, model_config.json, t5/ | None |
| `encode_text(input_ids, attention_mask)` | (B, L) int64 x2 | (B, L, D) T5 last hidden state |
| `condition(input_ids, attention_mask, seconds_total)` | + (B,) float32 | `Conditioning` |
| `dit_forward(x, t, cross, global_)` | (B, C, T), (B,), (B, L+1, D), (B, D) | v (B, C, T) |
| `sample(noise, step_noise, cond, steps, sampler, cfg_scale)` | see below | `SamplerResult` |
| `decode(latents)` | (B, C, T) | planar audio (B, 2, N) float32 |
| `generate(input_ids, attention_mask, seconds_total, noise, step_noise, steps, sampler, cfg_scale)` | | (B, 2, N) |
| `converted_weights()` | | {official name: array in official layout} |
| `module_map()` | | `ModuleMap` (per-layer capture) |
| `capture(names, reference)` | official names, {name: golden} or None | context manager yielding a dict filled on exit |

Conventions (the official `stable-audio-tools` model and the goldens follow them):

- `load` builds the port with the port's OWN converter from the official files. Never feed it
  the harness's converted weights: conversion is where real ports break.
- `encode_text` returns the encoder output as T5 gives it; zeroing the padded positions is the
  conditioner's job (`condition`). An adapter whose text encoder already zeroes padding is
  accepted (the check says so).
- `condition` returns `cross` = cat(prompt tokens with padding zeroed (B, L, D), seconds token
  (B, 1, D)) -> (B, L+1, D), and `global_` = the seconds token (B, D).
- `dit_forward` is one conditional call of the DiT: no CFG inside. t is the flow time in
  [0, 1] (1 = pure noise); v is the velocity, x0 = x - t * v.
- `sample`: noise (B, C, T) is x at t = 1; step_noise (steps, B, C, T) is the noise pingpong
  injects after step i (x = (1 - t_{i+1}) x0 + t_{i+1} step_noise[i]; the last is unused).
  Schedule: t_i = sigmoid(-logsnr_i), logsnr = linspace(-6, 2, steps + 1), t_0 = 1, t_end = 0.
  sampler "pingpong" or "euler" (x += (t_{i+1} - t_i) v). CFG: with cfg_scale != 1 the
  unconditional branch is the same call with `cross` zeroed and `global_` unchanged,
  v = uncond + (cond - uncond) * cfg_scale; at cfg_scale 1 only the conditional branch runs.
  Return the final latents and, where the port can, per-step lists `xs` (x after step i),
  `denoised` (x0 at step i, pingpong) and `v`. A sampler kind the port lacks: raise
  `NotCovered("no pingpong sampler")`.
- `decode` returns float32 planar audio, untrimmed.
- `generate` is the port's own end-to-end path on the same injected inputs (the check runs
  `audio check` on it against the bundled model's clip from the same inputs).
- `converted_weights` returns the port's tensors after its own conversion under official names
  (`model.model.*`, `pretransform.model.*`, `conditioner.conditioners.*`, T5 as
  `conditioner.conditioners.prompt.model.<HF T5 name>`), re-laid to the official layout. A
  weight-normed conv the port fuses is returned as `<module>.weight` (the check fuses the
  official weight_g/weight_v the same way). Tensors the port cannot undo to the official layout
  may be left out.
- `capture` is for ports that record intermediates themselves (the bundled model does, through
  its taps): inside the block, record the listed official names (official layout), and with
  `reference` hand each golden tensor downstream instead of the port's own (teacher forcing).
  Without it, `module_map` gives the same through `harness.ports.capture`.
- Batches: every stage takes B >= 1 rows; the goldens drive B = 3 (tiny) and B = 1 (full).
- The harness calls each stage in a worker process with a timeout: an exception, a wrong
  shape or dtype, NaN, or a hang is a broken adapter (exit 2 naming the adapter and stage).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

STAGES = ("converted_weights", "encode_text", "condition", "dit_forward", "sample", "decode",
          "generate")


class NotCovered(Exception):
    """Raised by a stage the port does not implement for these arguments (e.g. no pingpong)."""


@dataclass
class Conditioning:
    cross: np.ndarray            # (B, L+1, D) float32: prompt tokens (padding zeroed) + seconds
    global_: np.ndarray          # (B, D) float32: the seconds token


@dataclass
class SamplerResult:
    latents: np.ndarray                      # (B, C, T) final x at t = 0
    xs: list[np.ndarray] | None = None       # x after each step, (B, C, T) each
    denoised: list[np.ndarray] | None = None  # x0 predicted at each step (pingpong)
    v: list[np.ndarray] | None = None        # the (CFG-combined) velocity of each step


# A layout note for a captured module output: how to bring it to the official layout.
# "channels_last": the port holds (B, T, C) where the official module outputs (B, C, T).
Layout = str | Callable[[np.ndarray], np.ndarray] | None


@dataclass
class ModuleMap:
    """Port module paths -> official module paths, for per-layer first divergence.

    framework: "mlx" (the roots are mlx.nn.Module trees) or "torch" (torch.nn.Module trees;
    forward hooks). roots: {prefix: root module}; a port path is "<prefix>.<named_modules
    path>" ("" prefix: the bare path). paths: {port path: official path} or {port path:
    (official path, layout)}. The harness captures each mapped module's output during a
    stage and compares it with the golden tensor of that official name; it can also replace
    the output with the golden's (teacher forcing) to tell a local fault from an inherited one.
    """
    framework: str
    roots: dict[str, object]
    paths: dict[str, str | tuple[str, Layout]] = field(default_factory=dict)

    def entries(self) -> dict[str, tuple[str, Layout]]:
        return {p: (v, None) if isinstance(v, str) else (v[0], v[1])
                for p, v in self.paths.items()}


class Port:
    """Base class for adapters. Only `load` is required; define the stages your port has."""

    name: str = "unnamed"
    # "torch": the adapter's process runs without the OpenBLAS preload the harness sets up for
    # MLX on Linux (it would stand in for torch's own sgemm); also assumed when importing the
    # adapter's module imports torch.
    framework: str = "mlx"

    def load(self, checkpoint_dir: pathlib.Path) -> None:
        raise NotImplementedError

    # Optional stages (not defined here on purpose: `hasattr` tells the harness what the port
    # covers). See the module docstring for their signatures:
    #   encode_text, condition, dit_forward, sample, decode, generate, converted_weights,
    #   module_map


def provides(port, stage: str) -> bool:
    """Whether the adapter defines `stage` (a method)."""
    return callable(getattr(port, stage, None))
