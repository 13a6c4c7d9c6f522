"""Tolerances: ONE policy per (golden producer, MLX device, MLX compute dtype), a floor per
tensor group.

Criterion, the same everywhere: per tensor, SNR = 10·log10(Σref² / Σ(ref - mlx)²) must be
>= the floor of the tensor's group (store.group_of: t5, conditioner, dit, dit-steps, sampler, vae), and
the cosine >= 1 - ½·10^(-floor/10), the cosine an error exactly at the SNR floor gives when it
is orthogonal to the reference (so the cosine never rejects what the SNR floor accepts; it is
the scale-blind second reading of the same error, and a failure message names the SNR).

Every floor = the worst reference-vs-reference SNR measured for that group, minus at least
10 dB, rounded down to a multiple of 5 dB. Measured on the committed tiny goldens (synth tiny
seed 0, 3 prompts, 32 frames, 8 steps) and on two full-size torch goldens recorded for this
(synth full seed 0, 16 frames; `full-torch` every intermediate, `full-torch-cfg` cfg 4
boundaries; not committed). Groups get separate floors because error grows with depth and
with the weights' amplification: at full size T5's 12 blocks lose ~27 dB, and the synthetic
VAE decoder ~8 dB per block (50.7 dB at its output), while every module replayed on the
reference's own input (all-intermediates goldens) stays >= 111 dB (full) / >= 124 dB (tiny):
the loss is amplified rounding, not a module error. A floor is never lowered to make a
comparison pass.

Devices: every floor above was measured with MLX on the CPU. Another device (the Metal GPU)
gets its own table once `sao-harness golden calibrate --device gpu` has measured it and the
proposed table is committed as device_floors/<device>.json (same margin rule). Until then a
run on that device uses the CPU floors minus UNCALIBRATED_ALLOWANCE_DB, and the policy label
(hence every report and JSON) says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from harness.golden.store import group_of
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
    device: str = "cpu"  # the MLX device the floors were measured on
    calibrated: bool = True  # False: CPU floors minus the uncalibrated-device allowance

    def tolerance(self, name: str) -> Tolerance | None:
        group = group_of(name)
        return self.groups.get(group, self.groups.get(FALLBACK.get(group, group)))


# A group a policy has not measured is judged by the floor of the group it derives from: the
# DiT's intermediates at sampler steps >= 1 by the sampler's (their input is its x).
FALLBACK = {"dit-steps": "sampler"}


# -- fp32 goldens vs MLX fp32 ------------------------------------------------------------------
# Reference-vs-reference, min SNR per group (dB); "cfg" = cfg_scale 4 case:
#   group        torch vs LiteRT  MLX vs torch, tiny      MLX vs LiteRT  MLX vs torch, full
#   t5           127.5            124.9                   125.8          89.0 (prompt.model)
#   conditioner  126.9            123.8                   125.0          86.4 (prompt)
#   dit          121.1            121.3                   121.3          86.0 (cross_attn.k_norm)
#   sampler      120.4            119.8; cfg 111.4        119.5          95.9; cfg 91.4 (steps.7.v)
#   vae          96.3             94.9; cfg 87.4 (audio)  95.2           50.7; cfg 47.5 (audio)
# The committed golden/full-torch (256 frames, 1 prompt, boundaries) then measured: t5 97.1,
# conditioner 95.1, sampler 94.7, audio 49.8 dB.
# (torch vs LiteRT through XNNPACK: v 120.3, audio 96.0. cfg 4 multiplies the cond-uncond
# difference by 4, ~+10 dB of error on v, carried into the audio.)
FP32 = {
    "t5": Tolerance(75.0, 89.0),             # margin 14.0 dB
    "conditioner": Tolerance(75.0, 86.4),    # margin 11.4 dB
    "dit": Tolerance(75.0, 86.0),            # margin 11.0 dB
    "sampler": Tolerance(80.0, 91.4),        # margin 11.4 dB
    "vae": Tolerance(35.0, 47.5),            # margin 12.5 dB
}

# The floors above are set by the full-size goldens, whose depth and synthetic weights
# amplify rounding; on the tiny preset they would leave 35-50 dB of slack, enough to hide
# real slips (a qk-norm eps of 1e-5 for 1e-6 reads 95.6 dB on tiny). Goldens recorded from
# the tiny synth (manifest weights.preset == "tiny") get floors from the tiny columns, same
# rule: t5 min(127.5, 123.9), conditioner min(126.9, 124.2), dit min(121.1, 120.9), sampler
# min(120.4, cfg 111.4), vae min(96.3, cfg 87.4); re-measured after the fastmath kernels
# (MLX vs torch / LiteRT, all four tiny cases). Re-measured with the per-sublayer T5 and
# every-step DiT goldens (tiny-torch, -euler, -cfg, -long): t5 120.9 (block 1's
# SelfAttention sublayer), dit 121.5; the DiT's intermediates at steps >= 1 (group
# dit-steps, their input x carrying the sampling error) 116.6 (tiny-torch, layers.1.ff@6).
# MLX's sgemm differs by OpenBLAS kernel set, and a host may preset it (the AMD host of our
# machine kind sets OPENBLAS_CORETYPE=Haswell): the same four cases with Haswell kernels read
# t5 121.7, conditioner 124.1, dit 121.5, sampler 112.0, vae 87.8, but dit-steps 114.1
# (tiny-torch, layers.1.ff@7), so its floor follows the rule on that (100, not 105).
FP32_TINY = {
    "t5": Tolerance(110.0, 120.9),           # margin 10.9 dB
    "conditioner": Tolerance(110.0, 124.2),  # margin 14.2 dB
    "dit": Tolerance(110.0, 120.9),          # margin 10.9 dB
    "sampler": Tolerance(100.0, 111.4),      # margin 11.4 dB
    "dit-steps": Tolerance(100.0, 114.1),    # margin 14.1 dB (Haswell kernels; 16.6 SkylakeX)
    "vae": Tolerance(75.0, 87.4),            # margin 12.4 dB
}

# The trained tiny model's goldens (manifest weights.preset == "tiny-trained", torch only: no
# LiteRT golden of it) get floors by the same rule from MLX vs torch on its four cases
# (tiny-trained-torch, -euler, -cfg, -long), worst SNR per group on an Intel Xeon host, for the
# weights committed 30 Nov (tools/train_tiny trial 8; `golden calibrate`): t5 124.4 (block 1's
# SelfAttention), conditioner 127.0 (prompt), dit 121.1 (cfg, layers.0.cross_attn), dit-steps
# 117.4 (model.model@7), sampler 100.7 (cfg, steps.7.denoised), vae 100.7 (cfg, decoder.input:
# the sampler's output). Against the first weights' (dit 123.1, dit-steps 104.6, sampler
# 103.9, vae 106.6) the rule moves dit-steps from 90 to 105 and vae from 95 to 90.
# First weights, reference vs reference (torch's AVX2 re-record of tiny-trained-torch vs the
# AVX-512 golden, suites/reference): t5 exact, conditioner 135.2, dit 124.8, dit-steps 115.7,
# sampler 113.6, vae 110.1: above MLX's, which set the floors.
# The general floors (35 dB vae) let the eps slips and an fp16 decoder through; these catch
# them at their own module (first weights: block LayerNorm eps 1e-6 read 109.1 dB at pre_norm,
# qk-norm eps 1e-5 106.4 at q_norm (vs 110), fp16 latents 73.9-75.0 at decoder.input). With
# OpenBLAS's Haswell (the AMD host's preset) or Zen kernels instead of SkylakeX the first
# weights' smallest margin was 10.6 dB (vae 105.6), with Sandybridge's 9.3 dB (vae 104.3); the
# mutants' readings moved by <= 0.1 dB (an eps effect, not rounding).
FP32_TINY_TRAINED = {
    "t5": Tolerance(110.0, 124.4),           # margin 14.4 dB
    "conditioner": Tolerance(115.0, 127.0),  # margin 12.0 dB
    "dit": Tolerance(110.0, 121.1),          # margin 11.1 dB
    "dit-steps": Tolerance(105.0, 117.4),    # margin 12.4 dB
    "sampler": Tolerance(90.0, 100.7),       # margin 10.7 dB
    "vae": Tolerance(90.0, 100.7),           # margin 10.7 dB
}

# -- fp32 goldens vs MLX fp16 (load_model(dtype=float16)) ---------------------------------------
# The official half-precision path (`model.to(float16)`, T5 in float16, the pretransform's
# model_half): every weight float16 (the RoPE inv_freq buffer too), every module output
# float16; float32 only where the official code keeps it (the RoPE cos/sin tables and
# rotation, seconds_total's normalization, the prompt conditioner's output `* mask.float()`,
# the returned audio) and inside kernels (softmax, norms, fastmath's range reductions).
# The timestep and the sampler state are float16 (the official DiT.forward casts t; the
# official sampler integrates in the noise's dtype). suites/model/test_compute_dtype.py holds
# this. Measured min SNR (dB) per group on the tiny goldens, MLX fp16 against:
#   group        torch, tiny synth     LiteRT   torch, tiny-trained        [official half path]
#   t5           53.3 (block 1 attn)   56.9     55.4                       54.4; 53.6
#   conditioner  55.4 (prompt)         55.4     56.8                       56.5; 56.9
#   dit          35.6 (long, k_rotary) 49.1     49.8 (to_timestep_embed)   35.6; 49.9
#   dit-steps    47.7 (to_timestep_    -        44.3 (layers.1.cross_attn  48.0; 46.5
#                embed@1)                       @5)
#   sampler      46.4 (cfg, steps.7.v) 54.2     34.7 (cfg, steps.7.        46.1; 36.9
#                                               denoised)
#   vae          24.8 (cfg, decoder    29.7     34.7 (cfg, decoder.input)  24.8; 36.9
#                .layers.4)
# The last column is the official PyTorch code itself run in half precision on the same
# goldens' inputs (tiny synth; tiny-trained): the same error class as ours, so these floors
# measure float16, not an MLX fault. dit is set by RoPE on the 1024-frame case: the float16
# inv_freq moves the angle by up to 0.16 rad at position 1024 (0.005 at 32). These floors replace ones
# measured when a float16 load still computed the DiT, sampler and decoder in float32
# (float16 weights promoted by float32 inputs; only T5 ran in float16): t5 45 (56.9 then),
# conditioner 45 (55.4), dit 40 (54.8), sampler 45 (57.9; dit-steps had no floor of its own
# and took it), vae 20 (33.5). On today's goldens that path read dit 35.6 (k_rotary of the
# 1024-frame case, later than those floors: under dit's 40) and t5 53.3 (an 8.3 dB margin).
# Real float16 is noisier, so four floors are looser: dit 40 -> 25, sampler 45 -> 20, vae
# 20 -> 10 (gross faults only: channels swapped, sign, gain), t5 45 -> 40; dit-steps gets 30.
# The floors take the worst of both tiny presets: one policy judges both. Not calibrated for
# full-size goldens: measured once (synth full seed 0, full-torch-euler, 32 frames) float16
# reads t5 32.3, conditioner 31.1, sampler >= 38.6 and the decoder's output 19.3 dB (finite):
# T5-base's 12 float16 blocks fall under the tiny floors, so full size fails at T5; use fp32.
FP16 = {
    "t5": Tolerance(40.0, 53.3),             # margin 13.3 dB
    "conditioner": Tolerance(45.0, 55.4),    # margin 10.4 dB
    "dit": Tolerance(25.0, 35.6),            # margin 10.6 dB
    "dit-steps": Tolerance(30.0, 44.3),      # margin 14.3 dB
    "sampler": Tolerance(20.0, 34.7),        # margin 14.7 dB
    "vae": Tolerance(10.0, 24.8),            # margin 14.8 dB
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
# Not calibrated on Arm's files or at full size (no Arm files here).
ARM = {
    "conditioner": Tolerance(45.0, 55.4),    # margin 10.4 dB (fp16-T5 case)
    "sampler": Tolerance(20.0, 31.7),        # margin 11.7 dB
    "vae": Tolerance(5.0, 16.1),             # margin 11.1 dB: catches only gross faults
}                                            # (channels swapped or interleaved, sign, gain;
                                             # the convT weight-norm mutant gives 5.0 dB here)

POLICIES: dict[tuple, Policy] = {
    ("torch", "fp32"): Policy("torch", "fp32", "torch fp32 golden vs MLX fp32", FP32),
    ("litert", "fp32"): Policy("litert", "fp32", "LiteRT fp32 golden vs MLX fp32", FP32),
    ("torch", "fp32", "tiny"): Policy("torch", "fp32", "torch fp32 golden (tiny synth) vs MLX "
                                      "fp32", FP32_TINY),
    ("litert", "fp32", "tiny"): Policy("litert", "fp32", "LiteRT fp32 golden (tiny synth) vs "
                                       "MLX fp32", FP32_TINY),
    ("torch", "fp32", "tiny-trained"): Policy("torch", "fp32", "torch fp32 golden (trained tiny) "
                                              "vs MLX fp32", FP32_TINY_TRAINED),
    ("torch", "fp16"): Policy("torch", "fp16", "torch fp32 golden vs MLX fp16", FP16),
    ("litert", "fp16"): Policy("litert", "fp16", "LiteRT fp32 golden vs MLX fp16", FP16),
    ("arm-tflite", "fp32"): Policy("arm-tflite", "fp32",
                                   "Arm TFLite (int8 DiT, fp16 VAE) golden vs MLX fp32", ARM),
}


# A device without a committed table of its own (device_floors/<device>.json) gets the CPU
# floors minus this. Not a measurement (no Apple GPU was available when it was set): fp32 on
# Metal is the same IEEE arithmetic in another reduction order and other exp/sin kernels,
# and on the CPU such differences (MLX vs torch vs LiteRT) move a group's SNR by <= ~3 dB; 10 dB
# is the CPU rule's whole margin once more. It keeps the tiny dit floor (100 dB) above a
# qk-norm eps slip (95.6 dB). Calibrate the device to replace it.
UNCALIBRATED_ALLOWANCE_DB = 10.0
DEVICE_FLOORS_DIR = Path(__file__).with_name("device_floors")
MARGIN_DB = 10.0  # floor = worst measured SNR - at least this, rounded down to ROUND_DB
ROUND_DB = 5.0


def floor_for(worst_db: float) -> float:
    """The margin rule every floor follows: worst - >= 10 dB, down to a multiple of 5 dB."""
    return math.floor((worst_db - MARGIN_DB) / ROUND_DB) * ROUND_DB


def policy_key(producer: str, dtype: str, preset: str | None = None) -> tuple:
    """The POLICIES key for a golden: a preset-specific one (key with the preset) wins over
    the general one, which is calibrated on full-size goldens."""
    if (producer, dtype, preset) in POLICIES:
        return (producer, dtype, preset)
    if (producer, dtype) in POLICIES:
        return (producer, dtype)
    known = ", ".join(f"{k[0]}/{k[1]}" for k in POLICIES if len(k) == 2)
    raise BadInput(None, f"no tolerance policy for {producer} goldens compared with an "
                         f"MLX {dtype} run (known: {known})")


def key_name(key: tuple) -> str:
    return "/".join(key)


@lru_cache(maxsize=8)
def device_table(device: str, directory: Path = DEVICE_FLOORS_DIR) -> dict:
    """The committed floor table of a non-CPU device ({} until one is committed)."""
    path = directory / f"{device}.json"
    if not path.is_file():
        return {}
    try:
        table = json.loads(path.read_text())
        return {k: {g: Tolerance(float(v["floor_db"]), float(v["worst_snr_db"]))
                    for g, v in groups.items()} for k, groups in table["policies"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BadInput(path, f"not a device floor table ({type(e).__name__}: {e})") from None


def policy_for(producer: str, dtype: str, preset: str | None = None,
               device: str | None = None) -> Policy:
    """The policy for (producer, MLX device, MLX dtype); device None = the device MLX computes
    on now (harness.device)."""
    key = policy_key(producer, dtype, preset)
    cpu = POLICIES[key]
    if device is None:
        from harness.device import current
        device = current()
    if device == "cpu":
        return cpu
    measured = device_table(device).get(key_name(key))
    if measured is not None:
        return replace(cpu, device=device, groups=measured,
                       label=f"{cpu.label} on the {device.upper()} (calibrated table)")
    groups = {g: Tolerance(t.snr_db - UNCALIBRATED_ALLOWANCE_DB, t.measured_db)
              for g, t in cpu.groups.items()}
    return replace(cpu, device=device, groups=groups, calibrated=False,
                   label=f"{cpu.label} on the {device.upper()}: NOT CALIBRATED, CPU floors minus "
                         f"{UNCALIBRATED_ALLOWANCE_DB:g} dB (run `sao-harness golden calibrate "
                         f"--device {device}`)")
