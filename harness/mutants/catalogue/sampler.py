"""Sampler mutants: the timestep schedule, pingpong and euler integration, and
classifier-free guidance. Each swaps one function the pipeline calls (see `core`); a
restated function differs from the model's in the line marked BUG.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from harness.model import pipeline
from harness.model import sampler as rf_sampler
from harness.model.capture import sampler_step, tap
from harness.model.sampler import sample as original_sample
from harness.mutants.core import Mutant, swap


def _cfg_always(dit, cross, global_cond, cfg_scale, scale_phi=0.0):
    def denoise(x, t):
        cond = dit(x, t, cross, global_cond)
        uncond = dit(x, t, mx.zeros_like(cross), global_cond)
        v = cond + (cond - uncond) * cfg_scale  # BUG: extrapolates from cond: 2c - u at 1
        return tap(dit, v, "cfg")
    return denoise


def _cfg_halves_swapped(out, b):
    uncond, cond = out[:b], out[b:]  # BUG: the batch is cond then uncond
    return cond, uncond


def linear_schedule(steps):
    """logsnr_schedule's signature, timesteps linear in t."""
    return np.linspace(1.0, 0.0, steps + 1, dtype=np.float32)  # BUG: not logSNR-spaced


def _euler_always(denoise, x, t, sampler="pingpong", step_noise=None, on_step=None):
    return original_sample(denoise, x, t, "euler", step_noise, on_step)  # BUG: sampler ignored


def _pingpong_stale_noise(denoise, x, t, sampler="pingpong", step_noise=None, on_step=None):
    if sampler == "pingpong":
        step_noise = [x] * (len(t) - 2)  # BUG: the initial noise re-injected, no fresh draw
    return original_sample(denoise, x, t, sampler, step_noise, on_step)


def euler_dt_sign(denoise, x, t, sampler="pingpong", step_noise=None, on_step=None):
    """sample() whose euler path steps with dt of the wrong sign (pingpong unchanged)."""
    if sampler != "euler":
        return original_sample(denoise, x, t, sampler, step_noise, on_step)
    ones = mx.ones((x.shape[0],), dtype=x.dtype)
    for i in range(len(t) - 1):
        t_i, t_next = float(t[i]), float(t[i + 1])
        with sampler_step(i):
            v = denoise(x, ones * t_i)
        v = tap(f"sampler.steps.{i}.v", v)
        x = tap(f"sampler.steps.{i}.x", x + (t_i - t_next) * v)  # BUG: dt = t_i - t_next
        if on_step is not None:
            on_step(i, x)
    return x


MUTANTS = [
    Mutant("linear-schedule", "sampler.t",
           "linear timesteps instead of logSNR-spaced: too few steps at low noise: "
           "residual hiss, blurry detail", swap(pipeline, "logsnr_schedule", linear_schedule)),
    Mutant("euler-for-pingpong", "sampler.steps.0.denoised",
           "euler integration where pingpong was asked: the 8-step distilled model "
           "under-converges: noisy, washed-out audio", swap(pipeline, "sample", _euler_always)),
    Mutant("pingpong-stale-noise", "sampler.steps.0.x",
           "pingpong re-injects the initial noise instead of fresh noise each step: "
           "the same noise pattern reinforced: tonal artefacts, static texture",
           swap(pipeline, "sample", _pingpong_stale_noise)),
    Mutant("euler-dt-sign", "sampler.steps.0.x",
           "euler integrates with dt of the wrong sign (only with --sampler euler): the noise "
           "is amplified instead of removed: loud noise; not audible in the audio checks' clip, "
           "which runs pingpong", swap(pipeline, "sample", euler_dt_sign), audible=False),
    Mutant("cfg-at-scale-1", "sampler.steps.0.v",
           "CFG extrapolated from the conditional branch, so scale 1 still applies guidance "
           "(2c - u): over-saturated, harsh, distorted output",
           swap(pipeline, "cfg_denoiser", _cfg_always)),
    Mutant("cfg-halves-swapped", "model.model.cfg",
           "CFG with the cond and uncond halves exchanged: guidance pushes AWAY from the "
           "prompt (only when cfg_scale != 1): anti-prompt, harsh, over-saturated output; "
           "not audible in the audio checks' clip, which runs at cfg 1",
           swap(rf_sampler, "cfg_halves", _cfg_halves_swapped), audible=False),
]
