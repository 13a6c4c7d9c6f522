"""The timed stages of the MLX model, on fixed inputs, shared by `suites/bench` and `sao-harness bench`.

Each stage is a zero-argument callable that runs one piece of the pipeline and ends with
`mx.eval`, so a timer around it measures the computation and not MLX's lazy graph building.
Everything a stage consumes (conditioning, latents) is computed and evaluated once up front,
so a stage times only its own work. Inputs come from `harness.bench.plan.fixed_inputs`
(numpy, seeded): the peers (`harness.reference.peer_timing`) get the very same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import mlx.core as mx
import numpy as np

from harness.bench.plan import STAGES, STEPS, VAE_FRAMES, DIT_FRAMES, fixed_inputs, stage_frames
from harness.model.sampler import cfg_denoiser, logsnr_schedule, sample


@dataclass
class Stage:
    name: str
    frames: int | None
    fn: Callable[[], None]


def _evaluated(*arrays):
    mx.eval(*arrays)
    return arrays


def build_stages(model, names=STAGES, vae_frames: int = VAE_FRAMES) -> dict[str, Stage]:
    """Stage name -> Stage for `model` (a loaded `StableAudio`); inputs built here, evaluated."""
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

    def latents(frames: int) -> mx.array:
        return mx.array(fixed_inputs(cfg, frames).noise)

    fns: dict[str, Callable[[], None]] = {}
    for name in names:
        frames = stage_frames(name, cfg, vae_frames)
        if name == "t5":
            fns[name] = lambda: mx.eval(t5(ids, mask))
        elif name == "conditioner":
            fns[name] = lambda: mx.eval(model.condition(inp.input_ids, inp.attention_mask,
                                                        inp.seconds_total))
        elif name == "dit":
            t = mx.array(schedule[:1])
            fns[name] = lambda t=t: mx.eval(model.dit(x, t, cross, global_cond))
        elif name == "sampler_step":
            # Step 3 of the 8-step schedule run as a one-step schedule: v and x0 through the
            # sampler's own code (as a last step it skips the renoising axpy, ~0.01% of a step).
            fns[name] = lambda: mx.eval(sample(denoise, x, schedule[3:5], "pingpong", []))
        elif name == "sampling":
            fns[name] = lambda: mx.eval(sample(denoise, x, schedule, "pingpong", step_noise))
        elif name in ("vae_decode", "vae_decode_short"):
            z = _evaluated(latents(frames))[0]
            fns[name] = lambda z=z: mx.eval(model.vae.decode(z))
        elif name == "generate":
            g = fixed_inputs(cfg, frames)
            fns[name] = lambda g=g: mx.eval(*model.run(
                g.input_ids, g.attention_mask, g.seconds_total, g.noise, g.step_noise,
                steps=STEPS, sampler="pingpong", cfg_scale=1.0, decode=True))
    return {n: Stage(n, stage_frames(n, cfg, vae_frames), fns[n]) for n in names}



def measure(stage: Stage, preset: str, rounds: tuple[int, int] | None = None):
    """One MLX table row: min/median over the plan's rounds and the MLX allocator's peak."""
    from harness.bench.plan import rounds_for
    from harness.bench.runner import timing_row

    warmup, n = rounds or rounds_for(preset, stage.name)
    mx.reset_peak_memory()
    row = timing_row(stage.name, "mlx", preset, stage.fn, n, warmup, stage.frames)
    row.peak_mb = mx.get_peak_memory() / 2**20
    return row
