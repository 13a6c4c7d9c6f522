"""The timed stages of the MLX model, on fixed inputs, shared by `suites/bench` and `sao-harness bench`.

Each stage is a zero-argument callable that runs one piece of the pipeline and ends with
`mx.eval`, so a timer around it measures the computation and not MLX's lazy graph building;
it returns the evaluated outputs. Everything a stage consumes (conditioning, latents) is
computed and evaluated once up front, so a stage times only its own work. Inputs come from
`harness.bench.plan.fixed_inputs` (numpy, seeded): the peers get the very same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import mlx.core as mx
import numpy as np

from harness.bench.plan import (DIT_FRAMES, STAGES, STEPS, VAE_FRAMES, fixed_inputs, rounds_for,
                                stage_frames)
from harness.bench.runner import Row, timing_row
from harness.model.sampler import cfg_denoiser, logsnr_schedule, sample


@dataclass
class Stage:
    name: str
    frames: int | None               # latent frames (None: the stage has no latents)
    fn: Callable[[], tuple]          # runs the stage, returns its evaluated outputs
    out_length: int | None = None    # last-axis length of the first output, when it has frames


def _evaluated(*arrays) -> tuple:
    mx.eval(*arrays)
    return arrays


def build_stages(model, names=STAGES, vae_frames: int = VAE_FRAMES) -> dict[str, Stage]:
    """Stage name -> Stage for `model` (a loaded `StableAudio`); inputs built and evaluated here."""
    cfg = model.config
    unknown = set(names) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
    inp = fixed_inputs(cfg, DIT_FRAMES)
    ids = mx.array(inp.input_ids.astype(np.int32))
    mask = mx.array(inp.attention_mask.astype(np.int32))
    cross, global_cond = _evaluated(*model.condition(inp.input_ids, inp.attention_mask,
                                                     inp.seconds_total))
    denoise = cfg_denoiser(model.dit, cross, global_cond, 1.0)
    schedule = logsnr_schedule(STEPS)
    x = mx.array(inp.noise)
    step_noise = [mx.array(n) for n in inp.step_noise]
    t5 = model.conditioner.conditioners["prompt"].model
    ratio = cfg.vae.downsampling_ratio

    stages = {}
    for name in names:
        frames = stage_frames(name, cfg, vae_frames)
        out_length = frames
        if name == "t5":
            fn = lambda: _evaluated(t5(ids, mask))
        elif name == "conditioner":
            fn = lambda: _evaluated(*model.condition(inp.input_ids, inp.attention_mask,
                                                     inp.seconds_total))
        elif name == "dit":
            t = mx.array(schedule[:1])
            fn = lambda t=t: _evaluated(model.dit(x, t, cross, global_cond))
        elif name == "sampler_step":
            # Step 3 of the 8-step schedule run as a one-step schedule: v and x0 through the
            # sampler's own code (as a last step it skips the renoising axpy, ~0.01% of a step).
            fn = lambda: _evaluated(sample(denoise, x, schedule[3:5], "pingpong", []))
        elif name == "sampling":
            fn = lambda: _evaluated(sample(denoise, x, schedule, "pingpong", step_noise))
        elif name in ("vae_decode", "vae_decode_short"):
            z = _evaluated(mx.array(fixed_inputs(cfg, frames).noise))[0]
            fn = lambda z=z: _evaluated(model.vae.decode(z))
            out_length = frames * ratio
        elif name == "generate":
            g = fixed_inputs(cfg, frames)
            fn = lambda g=g: _evaluated(*model.run(
                g.input_ids, g.attention_mask, g.seconds_total, g.noise, g.step_noise,
                steps=STEPS, sampler="pingpong", cfg_scale=1.0, decode=True)[::-1])
            out_length = frames * ratio  # audio first
        stages[name] = Stage(name, frames, fn, out_length)
    return stages


def measure(stage: Stage, preset: str, rounds: tuple[int, int] | None = None) -> Row:
    """One MLX table row: min/median over the plan's rounds and the MLX allocator's peak."""
    warmup, n = rounds or rounds_for(preset, stage.name)
    mx.reset_peak_memory()
    row, _ = timing_row(stage.name, "mlx", preset, stage.fn, n, warmup, stage.frames)
    row.peak_mb = mx.get_peak_memory() / 2**20
    return row
