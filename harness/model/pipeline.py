"""The whole model, `StableAudio`, and `generate`.

Top-level attributes mirror the official `ConditionedDiffusionModelWrapper` state dict:
`conditioner.conditioners.*`, `model.model.*` (the DiT), `pretransform.model.*` (the VAE);
the T5 encoder sits at `conditioner.conditioners.prompt.model.*` (the official code keeps it
outside the state dict; we load it from its own file).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from harness.model.capture import set_paths, tap
from harness.model.conditioner import MultiConditioner
from harness.model.config import ModelConfig
from harness.model.dit import DiffusionTransformer
from harness.model.sampler import cfg_denoiser, logsnr_schedule, sample
from harness.model.vae import AudioAutoencoder


# The planar audio the public `run`/`generate` path returns (what a WAV writer gets), recorded
# under this name by the golden recorders too.
OUTPUT_AUDIO = "output.audio"


class _Wrapper(nn.Module):
    """One level of the official tree that holds only `.model`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


@dataclass
class Generation:
    audio: np.ndarray               # planar (channels, samples) float32, untrimmed
    latents: np.ndarray             # (latent_dim, frames) final x0
    sample_rate: int
    seconds_total: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    step_times: list[float] = field(default_factory=list)


def make_noise(seed: int, shape: tuple[int, ...], steps: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Initial latent and per-step pingpong noise from one numpy PCG64 stream (portable)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    init = rng.standard_normal(shape, dtype=np.float32)
    return init, [rng.standard_normal(shape, dtype=np.float32) for _ in range(max(steps - 1, 0))]


class StableAudio(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.conditioner = MultiConditioner(cfg)
        self.model = _Wrapper(DiffusionTransformer(cfg.dit))
        self.pretransform = _Wrapper(AudioAutoencoder(cfg.vae))
        set_paths(self)

    @property
    def dit(self) -> DiffusionTransformer:
        return self.model.model

    @property
    def vae(self) -> AudioAutoencoder:
        return self.pretransform.model

    def condition(self, input_ids, attention_mask, seconds_total):
        raw = np.asarray(input_ids)
        vocab = self.config.t5.vocab_size
        if raw.size and (raw.min() < 0 or raw.max() >= vocab):  # mx.take would read wild memory
            raise ValueError(f"token ids must lie in [0, {vocab}) (the T5 vocabulary), got "
                             f"{int(raw.min())}..{int(raw.max())}")
        ids = mx.array(raw.astype(np.int32))
        mask = mx.array(np.asarray(attention_mask, dtype=np.int32))
        secs = mx.array(np.atleast_1d(np.asarray(seconds_total, dtype=np.float32)))
        return self.conditioner(ids, mask, secs)

    def run(self, input_ids, attention_mask, seconds_total, init_noise, step_noise=None, *,
            steps: int = 8, sampler: str = "pingpong", cfg_scale: float = 1.0,
            decode: bool = True, on_step=None):
        """Batched core with injected noise: -> (latents (B, C, T), audio (B, 2, N) or None).

        init_noise (B, C, T) and step_noise (steps - 1 or more arrays of that shape) are the
        caller's, so a golden can drive this with the reference's exact noise.
        """
        cross, global_cond = self.condition(input_ids, attention_mask, seconds_total)
        denoise = cfg_denoiser(self.dit, cross, global_cond, cfg_scale)
        # The sampler state is in the DiT's dtype, as the official generate_diffusion_cond
        # makes it (noise.type(model_dtype); randn_like(x) for each step's noise): a float16
        # run integrates in float16.
        dtype = self.dit.dtype
        noise = (None if step_noise is None else
                 [mx.array(np.asarray(n)).astype(dtype) for n in step_noise])
        latents = sample(denoise, mx.array(np.asarray(init_noise, np.float32)).astype(dtype),
                         logsnr_schedule(steps), sampler, noise, on_step=on_step)
        return latents, (self.decode(latents) if decode else None)

    def decode(self, latents):
        """Planar float32 audio (the official pretransform's `.float()` of the decoder's)."""
        return tap(OUTPUT_AUDIO, self.vae.decode(latents).astype(mx.float32))

    def generate(self, input_ids, attention_mask, seconds_total: float, *, steps: int = 8,
                 sampler: str = "pingpong", cfg_scale: float = 1.0, seed: int = 99,
                 frames: int | None = None, progress=None) -> Generation:
        """One prompt -> planar audio, noise from `seed`, with per-stage and per-step timings.
        `progress(message)` (e.g. harness.progress.progress) hears of each stage and step."""
        progress = progress or (lambda message: None)
        cfg = self.config
        shape = (1, cfg.dit.io_channels, frames or cfg.latent_frames)
        init_noise, step_noise = make_noise(seed, shape, steps)
        ids, mask = np.atleast_2d(input_ids), np.atleast_2d(attention_mask)
        timings: dict[str, float] = {}
        step_times: list[float] = []

        t0 = time.perf_counter()
        progress("conditioning (T5, seconds)")
        mx.eval(self.condition(ids, mask, seconds_total))  # timed alone; cheap to redo below
        timings["conditioner"] = time.perf_counter() - t0

        def timed_step(i: int, x_i: mx.array):  # eval per step so each step is timed alone
            mx.eval(x_i)
            step_times.append(time.perf_counter() - t1 - sum(step_times))
            progress(f"sampler step {len(step_times)}/{steps} ({step_times[-1]:.2f} s)")

        t1 = time.perf_counter()
        latents, _ = self.run(ids, mask, seconds_total, init_noise, step_noise, steps=steps,
                              sampler=sampler, cfg_scale=cfg_scale, decode=False,
                              on_step=timed_step)
        mx.eval(latents)
        timings["sampling"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        progress(f"decoding {shape[2]} latent frames")
        audio = self.decode(latents)
        mx.eval(audio)
        timings["decode"] = time.perf_counter() - t2
        timings["total"] = time.perf_counter() - t0
        return Generation(audio=np.array(audio[0], dtype=np.float32),
                          latents=np.array(latents[0]), sample_rate=cfg.sample_rate,
                          seconds_total=float(seconds_total), timings=timings,
                          step_times=step_times)
