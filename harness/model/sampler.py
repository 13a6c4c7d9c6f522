"""Rectified-flow sampling: the logSNR schedule, pingpong and euler, CFG only when scale != 1.

`denoise(x, t)` returns v; x0 = x - t·v. Noise is always injected by the caller (initial
latent and per-step noise) so a golden can drive the sampler with the reference's noise.
"""

from __future__ import annotations

from typing import Callable

import mlx.core as mx
import numpy as np

from harness.model.capture import sampler_step, tap

Denoiser = Callable[[mx.array, mx.array], mx.array]
SAMPLERS = ("pingpong", "euler")


def logsnr_schedule(steps: int) -> np.ndarray:
    """t_i = sigmoid(-logsnr_i), logsnr = linspace(-6, 2, steps + 1); t[0] = 1, t[-1] = 0."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    logsnr = np.linspace(-6.0, 2.0, steps + 1, dtype=np.float64)
    t = 1.0 / (1.0 + np.exp(logsnr))
    t[0], t[-1] = 1.0, 0.0
    return t.astype(np.float32)


def cfg_halves(out, b: int):
    """(cond, uncond) of the doubled CFG batch: cond first, as `cfg_denoiser` builds it."""
    return out[:b], out[b:]


def cfg_denoiser(dit, cross, global_cond, cfg_scale: float, scale_phi: float = 0.0) -> Denoiser:
    """v(x, t) from the DiT; with cfg_scale != 1 the batch also holds a zeroed-cross branch."""

    if cfg_scale == 1.0:
        return lambda x, t: dit(x, t, cross, global_cond)

    def denoise(x, t):
        b = x.shape[0]
        out = dit(mx.concatenate([x, x]), mx.concatenate([t, t]),
                  mx.concatenate([cross, mx.zeros_like(cross)]),
                  mx.concatenate([global_cond, global_cond]))  # global cond is not nulled
        cond, uncond = cfg_halves(out, b)
        v = uncond + (cond - uncond) * cfg_scale
        if scale_phi != 0.0:
            ratio = cond.std(axis=1, keepdims=True) / v.std(axis=1, keepdims=True)
            v = scale_phi * (v * ratio) + (1 - scale_phi) * v
        return tap(dit, v, "cfg")  # the official DiT.forward's output; `model.model` is 2B

    return denoise


def sample(denoise: Denoiser, x: mx.array, t: np.ndarray, sampler: str = "pingpong",
           step_noise: list[mx.array] | None = None,
           on_step: Callable[[int, mx.array], None] | None = None) -> mx.array:
    """Integrate from t[0] = 1 (x = noise) to t[-1] = 0; returns the final latent x0.

    pingpong: x0 = x - t_i·v;  x = (1 - t_{i+1})·x0 + t_{i+1}·ε_i  (ε_i = step_noise[i]).
    euler:    x = x + (t_{i+1} - t_i)·v.
    The state keeps x's dtype (t_i are Python floats): float16 in a float16 run, as the
    official sampler in half precision.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {SAMPLERS}")
    steps = len(t) - 1
    if sampler == "pingpong" and (step_noise is None or len(step_noise) < steps - 1):
        raise ValueError(f"pingpong needs {steps - 1} per-step noise arrays")
    ones = mx.ones((x.shape[0],), dtype=x.dtype)
    for i in range(steps):
        t_i, t_next = float(t[i]), float(t[i + 1])
        with sampler_step(i):  # the DiT's intermediates are recorded under this step
            v = denoise(x, ones * t_i)
        v = tap(f"sampler.steps.{i}.v", v)
        if sampler == "euler":
            x = x + (t_next - t_i) * v
        else:
            x0 = tap(f"sampler.steps.{i}.denoised", x - t_i * v)
            x = x0 if i == steps - 1 else (1 - t_next) * x0 + t_next * step_noise[i]
        x = tap(f"sampler.steps.{i}.x", x)
        if on_step is not None:
            on_step(i, x)
    return x
