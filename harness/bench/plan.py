"""What is timed, on what, how often: shared by the MLX side and the peers (numpy only).

No mlx or torch import here: `harness.reference.peer_timing` runs in the reference venv
and must build the very same inputs as the MLX stages.
"""

from __future__ import annotations

from harness.model.config import ModelConfig
from harness.golden.inputs import Inputs, make_inputs

DIT_FRAMES = 256    # DiT forward, sampler step and sampling loop at the real model's length
VAE_FRAMES = 256    # VAE decode at the real model's length ...
SHORT_FRAMES = 32   # ... and at a short length (the full-size decode at 256 is slow)
STEPS = 8
PROMPT_TOKENS = 17  # real tokens (EOS included) of the fixed prompt
SECONDS = 11.0

# Row order of every table.
STAGES = ("t5", "conditioner", "dit", "sampler_step", "sampling", "vae_decode",
          "vae_decode_short", "generate")
# Stages the peers (official PyTorch on CPU, LiteRT with XNNPACK) also run.
PEER_STAGES = ("dit", "vae_decode", "vae_decode_short")
IMPLS = ("mlx", "torch", "litert")

# (warmup rounds, timed rounds) per preset and stage. Each timed round is one call (stages
# take milliseconds to minutes, so no inner loop is needed to beat timer resolution). Tiny
# counts are high because its min must be stable enough for --benchmark-compare-fail;
# full-size stages that take minutes on 2 cores get one round and no warm-up (MLX on CPU
# compiles nothing on a first call; its only first-call cost, allocation, is negligible there).
ROUNDS = {
    "tiny": {"t5": (3, 30), "conditioner": (3, 30), "dit": (2, 20), "sampler_step": (2, 20),
             "sampling": (1, 5), "vae_decode": (2, 10), "vae_decode_short": (2, 20),
             "generate": (1, 3)},
    "full": {"t5": (1, 5), "conditioner": (1, 5), "dit": (2, 5), "sampler_step": (2, 5),
             "sampling": (0, 1), "vae_decode": (0, 1), "vae_decode_short": (1, 2),
             "generate": (0, 1)},
}


def rounds_for(preset: str, stage: str) -> tuple[int, int]:
    """(warmup, rounds); a custom (non-preset) checkpoint gets the full-size counts."""
    return ROUNDS.get(preset, ROUNDS["full"])[stage]


def fixed_inputs(cfg: ModelConfig, frames: int, seed: int = 0) -> Inputs:
    """Batch-1 token ids, mask, seconds and noise: the same bytes on every run and machine."""
    return make_inputs(seed=seed, io_channels=cfg.dit.io_channels, frames=frames, steps=STEPS,
                       max_length=cfg.max_length, vocab_size=cfg.t5.vocab_size,
                       lengths=(PROMPT_TOKENS,), seconds=(SECONDS,))


def stage_frames(stage: str, cfg: ModelConfig, vae_frames: int = VAE_FRAMES) -> int | None:
    """Latent frames a stage runs at (None: the stage has no latents)."""
    return {"dit": DIT_FRAMES, "sampler_step": DIT_FRAMES, "sampling": DIT_FRAMES,
            "vae_decode": vae_frames, "vae_decode_short": SHORT_FRAMES,
            "generate": cfg.latent_frames}.get(stage)
