"""Tolerances: ONE policy per (golden producer, MLX compute dtype), a floor per tensor group.

Criterion, the same everywhere: per tensor, SNR = 10·log10(Σref² / Σ(ref - mlx)²) must be
>= the floor of the tensor's group (store.group_of: t5, conditioner, dit, sampler, vae), and
the cosine >= 1 - ½·10^(-floor/10), the cosine an error exactly at the SNR floor gives when it
is orthogonal to the reference (so the cosine never rejects what the SNR floor accepts; it is
the scale-blind second reading of the same error, and a failure message names the SNR).

Every floor = the worst reference-vs-reference SNR measured for that group minus a margin
stated next to it. Measured on the committed tiny goldens (synth tiny seed 0, 3 prompts, 32
frames, 8 steps) unless marked "full" (synth full seed 0, 16 frames, a torch golden recorded
for this measurement, not committed). Groups get separate floors because error grows with
depth: the VAE decoder (convs with activations reaching ~100) sits ~25 dB below the DiT.
A floor is never lowered to make a failing comparison pass: a failure is a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.compare.store import group_of
from harness.errors import BadInput


@dataclass(frozen=True)
class Tolerance:
    snr_db: float        # floor
    measured_db: float   # worst measured reference-vs-reference SNR of the group (documentation)

    @property
    def cosine(self) -> float:
        return 1.0 - 0.5 * 10.0 ** (-self.snr_db / 10.0)

    @property
    def margin_db(self) -> float:
        return self.measured_db - self.snr_db

    def accepts(self, m) -> bool:
        # NaN compares False: a non-finite output fails
        return m.snr_db >= self.snr_db and m.cosine >= self.cosine

    def why_not(self, m) -> str:
        if math.isnan(m.snr_db):
            return "non-finite values in the MLX output"
        if m.snr_db < self.snr_db:
            return f"SNR {m.snr_db:.1f} dB < {self.snr_db:g} dB"
        return f"cosine {m.cosine:.12f} < {self.cosine:.12f}"


@dataclass(frozen=True)
class Policy:
    producer: str
    dtype: str           # compute dtype of the MLX run
    label: str
    groups: dict[str, Tolerance]

    def tolerance(self, name: str) -> Tolerance | None:
        return self.groups.get(group_of(name))


# -- fp32 goldens vs MLX fp32 ------------------------------------------------------------------
# Reference-vs-reference, min SNR per group (dB):
#   group        torch vs LiteRT   MLX vs torch        MLX vs LiteRT   MLX vs torch, full
#   t5           127.5             125.8               125.8           TODO
#   conditioner  126.9             124.4               125.0
#   dit          121.1             121.3               121.3
#   sampler      120.4 (XNNPACK    119.8; cfg 4:       119.8
#                 120.3)           110.8 (steps.7.v)
#   vae          96.3 (XNNPACK     95.4 (layers.4);    95.5
#                 96.0)            cfg 4: 86.1 (audio)
# (cfg 4 multiplies the cond-uncond difference by 4: +12 dB of error on v, carried to audio.)
FP32 = {
    "t5": Tolerance(100.0, 125.8),           # margin 25.8 dB
    "conditioner": Tolerance(100.0, 124.4),  # margin 24.4 dB
    "dit": Tolerance(100.0, 121.1),          # margin 21.1 dB
    "sampler": Tolerance(90.0, 110.8),       # margin 20.8 dB (cfg 4 case)
    "vae": Tolerance(70.0, 86.1),            # margin 16.1 dB (cfg 4 final audio); 25.4 at cfg 1
}

# -- fp32 goldens vs MLX fp16 (load_model(dtype=float16): every weight and activation fp16) --
# Measured MLX fp16 vs torch fp32 (identical vs LiteRT fp32), min SNR per group (dB):
#   t5 56.9 (prompt.model), conditioner 55.4 (prompt), dit 54.8 (layers.0.cross_attn.k_norm),
#   sampler 57.9 (steps.7.v; cfg 4: 58.8), vae 34.2 (decoder.layers.4; cfg 4: 33.5 audio).
FP16 = {
    "t5": Tolerance(45.0, 56.9),             # margin 11.9 dB
    "conditioner": Tolerance(45.0, 55.4),    # margin 10.4 dB
    "dit": Tolerance(45.0, 54.8),            # margin 9.8 dB
    "sampler": Tolerance(45.0, 57.9),        # margin 12.9 dB
    "vae": Tolerance(25.0, 33.5),            # margin 8.5 dB
}

# -- Arm TFLite golden (int8 DiT, fp16 VAE) vs MLX fp32 ------------------------------------------
# No Arm files here, so Arm's deployment was reproduced on the tiny synth: our LiteRT export,
# DiT quantised with ai_edge_quantizer's dynamic-range int8 recipe (per-channel symmetric
# weights, activations quantised on the fly; legacy and current recipe agree within 0.4 dB),
# run through the default XNNPACK interpreter, 8 pingpong steps. Measured vs MLX fp32:
#   conditioners (fp32 file) 123.7 dB; sampler min 31.7 dB (steps.7.v; cosine 0.99966), v at
#   step 0 36.5 dB, final latent 34.5 dB; audio 16.1 dB (the synth VAE amplifies the latent
#   error by ~18 dB); an fp16 VAE on those latents adds noise at 34.4 dB (negligible on top).
# The official conditioner casts T5 to fp16 before any export, so Arm's "float32" conditioner
# may carry fp16-rounded T5 weights: the conditioner floor uses the fp16 T5 measurement
# (55.4 dB, above), not the 123.7 dB of our fp32 export.
ARM = {
    "conditioner": Tolerance(45.0, 55.4),    # margin 10.4 dB (fp16-T5 case)
    "sampler": Tolerance(20.0, 31.7),        # margin 11.7 dB
    "vae": Tolerance(10.0, 16.1),            # margin 6.1 dB: catches only gross faults
}                                            # (swapped/interleaved channels, sign, gain)

POLICIES: dict[tuple[str, str], Policy] = {
    ("torch", "fp32"): Policy("torch", "fp32", "torch fp32 golden vs MLX fp32", FP32),
    ("litert", "fp32"): Policy("litert", "fp32", "LiteRT fp32 golden vs MLX fp32", FP32),
    ("torch", "fp16"): Policy("torch", "fp16", "torch fp32 golden vs MLX fp16", FP16),
    ("litert", "fp16"): Policy("litert", "fp16", "LiteRT fp32 golden vs MLX fp16", FP16),
    ("arm-tflite", "fp32"): Policy("arm-tflite", "fp32",
                                   "Arm TFLite (int8 DiT, fp16 VAE) golden vs MLX fp32", ARM),
}


def policy_for(producer: str, dtype: str) -> Policy:
    try:
        return POLICIES[(producer, dtype)]
    except KeyError:
        known = ", ".join(f"{p}/{d}" for p, d in POLICIES)
        raise BadInput(None, f"no tolerance policy for a {producer} golden compared with an "
                             f"MLX {dtype} run (known: {known})") from None
