"""Drift of a candidate against the approved checkpoint, per stage, on fixed inputs and noise.

Stages (each isolated where it can be, so a drift names the part that moved):

- conditioner: T5 + seconds embedding outputs (cross-attention tokens, global cond);
- dit:         v at several t of the 8-step schedule, both models fed the *approved* model's
               conditioning and the same x_t = (1 - t)·z0 + t·noise;
- trajectory:  the whole pingpong run end to end (each model its own conditioning), x after
               every step and the final latents;
- vae:         both decoders on the *approved* model's final latents;
- audio:       end to end, the candidate's audio against the approved audio.

The metric is SNR in dB of candidate against approved (inf when bit-equal). Thresholds for
`--expect same` live in drift_tolerances.toml with the measurements behind them.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.compare.metrics import measure
from harness.compare.weightdiff import snr_db
from harness.model import prefixes

PROMPTS = ("warm analog synth pad with a slow filter sweep", "128 BPM tech house drum loop")
SECONDS = (3.0, 11.0)
NOISE_SEED = 1234
STEPS = 8
DIT_STEPS = (0, 4, 6, 7)  # schedule indices probed alone: t = 1, 0.881, 0.5, 0.269
MODULE_SAMPLES = 1 << 20  # per recorded module: a fixed strided subset beyond this size
MIN_AUDIO_SAMPLES = 32768  # harness.audio checks need >= 0.75 s (shorter clips make them fail)
STAGES = ("conditioner", "dit", "trajectory", "vae", "audio")
TOLERANCES_FILE = Path(__file__).with_name("drift_tolerances.toml")


def default_frames(cfg) -> int:
    """Latent frames for the probes: the model's length (full: 256 = 11.9 s) but at least
    enough audio for the audio checks and at most 256 frames of DiT work."""
    ratio = cfg.vae.downsampling_ratio
    return min(cfg.latent_frames, max(256, math.ceil(MIN_AUDIO_SAMPLES / ratio)))


@dataclass(frozen=True)
class Probe:
    ids: np.ndarray
    mask: np.ndarray
    seconds: np.ndarray
    noise: np.ndarray          # (B, C, T): x at t = 1
    step_noise: list           # pingpong noise per step
    z0: np.ndarray             # data-like latent for the DiT probes
    t: np.ndarray              # the 8-step schedule

    @property
    def frames(self) -> int:
        return self.noise.shape[-1]


def make_probe(cfg, spiece: Path | None, frames: int) -> Probe:
    """Fixed prompts (tokenized when a SentencePiece model is at hand, else fixed ids), fixed
    seconds, and noise from one PCG64 stream: the same bytes on every machine."""
    from harness.model.sampler import logsnr_schedule

    n = len(PROMPTS)
    if spiece is not None and Path(spiece).exists():
        from harness.model.tokenizer import Tokenizer
        ids, mask = Tokenizer.from_file(spiece).encode(list(PROMPTS), cfg.max_length)
    else:
        ids = np.zeros((n, cfg.max_length), np.int32)
        mask = np.zeros((n, cfg.max_length), np.int32)
        for row, length in enumerate((9, 24)):
            length = min(length, cfg.max_length)
            ids[row, :length - 1] = 2 + (np.arange(length - 1) * 37 + 11 * row) % (
                cfg.t5.vocab_size - 2)
            ids[row, length - 1] = 1  # EOS
            mask[row, :length] = 1
    rng = np.random.Generator(np.random.PCG64(NOISE_SEED))
    shape = (n, cfg.dit.io_channels, frames)
    noise = rng.standard_normal(shape, dtype=np.float32)
    step_noise = [rng.standard_normal(shape, dtype=np.float32) for _ in range(STEPS - 1)]
    z0 = rng.standard_normal(shape, dtype=np.float32)
    return Probe(ids, mask, np.array(SECONDS, np.float32), noise, step_noise, z0,
                 logsnr_schedule(STEPS))


@dataclass
class Outputs:
    tensors: dict[str, np.ndarray] = field(default_factory=dict)  # stage outputs, in order
    modules: dict[str, np.ndarray] = field(default_factory=dict)  # intermediates, exec order


# Model part (prefixes.part_of) -> drift stage. The stage outputs' own names (`dit.v@t=...`,
# `vae.decode(...)`, `latents`) name their stage directly.
PART_STAGES = {"t5": "conditioner", "conditioner": "conditioner", "dit": "dit",
               "sampler": "trajectory", "vae": "vae"}


def stage_of(name: str) -> str:
    """The drift stage (STAGES) of a stage output or of a recorded module's official name."""
    if name == "latents":
        return "trajectory"
    if name.split(".", 1)[0] in STAGES:
        return name.split(".", 1)[0]
    return PART_STAGES.get(prefixes.part_of(name), "audio")


def _recorded(name: str) -> bool:
    """Every conditioner, DiT and sampler output; of the decoder only its top-level layers
    (inside the last blocks the full model holds ~0.5 GB per tensor at 256 frames)."""
    if prefixes.part_of(name) == "vae":
        return name.count(".layers.") <= 1
    return True


def _thin(x: np.ndarray) -> np.ndarray:
    """A fixed strided subset of a large intermediate: the same elements in both runs, so
    its SNR estimates the whole tensor's (used for the per-layer plot, not the verdict)."""
    if x.size <= MODULE_SAMPLES:
        return x
    return np.ascontiguousarray(x.reshape(-1)[:: -(-x.size // MODULE_SAMPLES)])


def run_probes(model, probe: Probe, ref: Outputs | None = None, *,
               isolated: bool = True) -> Outputs:
    """All stage outputs of `model`; with `ref` (the approved model's outputs) the isolated
    stages are fed the approved conditioning and latents. isolated=False: only the end-to-end
    run (conditioning, trajectory, audio), for a candidate with nothing to compare against."""
    import mlx.core as mx

    from harness.model.capture import recording

    out = Outputs()
    with recording(keep=_recorded) as rec:
        latents, audio = model.run(probe.ids, probe.mask, probe.seconds, probe.noise,
                                   probe.step_noise, steps=STEPS)
        mx.eval(latents, audio, rec.tensors)
    mods = {k: _thin(np.array(v, dtype=np.float32)) for k, v in rec.tensors.items()}
    cross = np.array(rec.tensors["conditioner.cross_attn_cond"], dtype=np.float32)
    glob = np.array(rec.tensors["conditioner.global_cond"], dtype=np.float32)
    out.tensors["conditioner.cross_attn_cond"] = cross
    out.tensors["conditioner.global_cond"] = glob
    if ref is not None:
        cross = ref.tensors["conditioner.cross_attn_cond"]
        glob = ref.tensors["conditioner.global_cond"]
    cross_mx, glob_mx = mx.array(cross), mx.array(glob)
    for i in DIT_STEPS if isolated else ():
        t = float(probe.t[i])
        x = mx.array((1.0 - t) * probe.z0 + t * probe.noise)
        v = model.dit(x, mx.full((x.shape[0],), t, dtype=mx.float32), cross_mx, glob_mx)
        out.tensors[f"dit.v@t={t:.3f}"] = np.array(v, dtype=np.float32)
    for i in range(STEPS):
        out.tensors[f"sampler.steps.{i}.x"] = np.array(rec.tensors[f"sampler.steps.{i}.x"],
                                                       dtype=np.float32)
    out.tensors["latents"] = np.array(latents, dtype=np.float32)
    if isolated:
        src = out.tensors["latents"] if ref is None else ref.tensors["latents"]
        out.tensors["vae.decode(approved latents)"] = np.array(model.vae.decode(mx.array(src)),
                                                              dtype=np.float32)
    out.tensors["audio"] = np.array(audio, dtype=np.float32)
    out.modules = mods
    return out


@dataclass
class Row:
    stage: str
    name: str
    snr_db: float
    max_abs: float
    rel_max: float            # max |c - a| / max |a|
    min_snr_db: float | None  # None: reported, not judged
    passed: bool

    def to_dict(self) -> dict:
        f = lambda v: v if v is None or math.isfinite(v) else ("inf" if v > 0 else "-inf")
        return {"stage": self.stage, "name": self.name, "snr_db": f(self.snr_db),
                "max_abs": self.max_abs, "rel_max": self.rel_max,
                "min_snr_db": f(self.min_snr_db), "passed": self.passed}


def compare(cand: Outputs, base: Outputs, limits: dict[str, float] | None) -> list[Row]:
    rows = []
    for name, a in base.tensors.items():
        m = measure(cand.tensors[name], a)
        stage = stage_of(name)
        limit = None if limits is None else limits[stage]
        rows.append(Row(stage, name, m.snr_db, m.max_abs, m.max_rel, limit,
                        limit is None or m.snr_db >= limit))  # NaN SNR fails
    return rows


def module_snr(cand: Outputs, base: Outputs) -> list[tuple[str, float]]:
    """Per-module SNR of the end-to-end run, in execution order (first sampler step)."""
    return [(n, snr_db(cand.modules[n], a)) for n, a in base.modules.items()
            if n in cand.modules and cand.modules[n].shape == a.shape]


@lru_cache(maxsize=4)
def _load_tolerances(path: str) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def tolerances(rounding: str, path: Path = TOLERANCES_FILE) -> dict[str, float]:
    """Minimum SNR per stage for `--expect same`. rounding: "fp32" (no tensor rounded
    coarser than float32), "fp16" or "bf16" (the coarsest re-encoding present)."""
    table = _load_tolerances(str(path))
    return {stage: float(table[rounding][stage]) for stage in STAGES}
