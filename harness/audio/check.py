"""`check_audio`: every audio-quality metric against its threshold in thresholds.toml.

Used by `sao-harness audio check`, the weight gate and the mutation tests on generated planar
(2, N) float32 arrays at 44100 Hz.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.audio import metrics as m
from harness.audio.io import validate
from harness.errors import BadInput

THRESHOLDS_FILE = Path(__file__).with_name("thresholds.toml")

# name -> metric(signal); run on every clip. `s.x` is the planar array, `s.sr` its rate.
FREE = {
    "nonfinite_samples": lambda s: m.nonfinite_samples(s.x),
    "rms_dbfs": lambda s: m.rms_dbfs(s.x),
    "loudness_lufs": lambda s: m.loudness_lufs(s, s.sr),
    "clipping_ratio": lambda s: m.clipping_ratio(s.x),
    "dc_offset": lambda s: m.dc_offset(s.x),
    "channel_correlation": lambda s: m.channel_correlation(s.x),
    "side_level_db": lambda s: m.side_level_db(s.x),
    "band_limit_db": lambda s: m.band_limit_db(s.x, s.sr),
    "flicker_db": lambda s: m.flicker_db(s.x, s.sr),
    "seam_db": m.seam_db,
    "frame_seam_db": m.frame_seam_db,
    **{f"comb_{name}_db": (lambda s, p=p: m.comb_db(s, p))
       for name, p in m.STRIDE_PERIODS.items()},
}
# name -> metric(signal, reference signal); run when a reference is given.
RELATIVE = {
    "speed_ratio": lambda s, r: m.speed_ratio(s, r, s.sr),
    "side_correlation": m.side_correlation,
    "side_level_ratio_db": m.side_level_ratio_db,
    "level_difference_db": lambda s, r: m.level_difference_db(s, r, s.sr),
    "mrstft_distance": lambda s, r: m.mrstft_distance(s, r, s.sr),
    "logmel_distance_db": lambda s, r: m.logmel_distance_db(s, r, s.sr),
    "envelope_correlation": lambda s, r: m.envelope_correlation(s, r, s.sr),
}


@dataclass
class Check:
    name: str
    value: float
    threshold: dict  # {"min": a} and/or {"max": b}
    passed: bool

    def to_dict(self) -> dict:
        v = self.value
        value = v if math.isfinite(v) else str(v)  # keep the JSON strict
        return {"name": self.name, "value": value, "threshold": self.threshold,
                "passed": self.passed}

    def __str__(self) -> str:
        bounds = " ".join(f"{k} {v:g}" for k, v in self.threshold.items())
        return f"{'PASS' if self.passed else 'FAIL'} {self.name} = {self.value:.6g} ({bounds})"


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def __getitem__(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self, file: str | None = None) -> dict:
        return {"file": file, "passed": self.passed, "checks": [c.to_dict() for c in self.checks]}


@lru_cache(maxsize=None)
def _load_thresholds(path: str) -> dict:
    with open(path, "rb") as f:
        table = tomllib.load(f)
    return {name: {k: float(v) for k, v in entry.items() if k in ("min", "max")}
            for name, entry in table.items()}


def thresholds(path: str | Path = THRESHOLDS_FILE) -> dict[str, dict]:
    t = _load_thresholds(str(path))
    missing = set(FREE) | set(RELATIVE)
    missing -= set(t)
    if missing:
        raise BadInput(path, f"no threshold for {sorted(missing)}")
    return t


def _passes(value: float, bounds: dict) -> bool:
    if math.isnan(value):
        return False
    return bounds.get("min", -math.inf) <= value <= bounds.get("max", math.inf)


def reference_signal(reference, sr: int) -> m.Signal:
    """Validate a reference once; pass the result to many check_audio calls to reuse its
    spectra."""
    ref = validate(reference, sr)
    if not np.isfinite(ref).all():
        raise BadInput(None, "reference has NaN/Inf samples")
    return m.Signal(ref, sr)


MIN_SAMPLES = 16 * 2048  # comb_lines needs > 12 bins between 21.5 Hz lines


def check_audio(audio, sr: int, reference=None, limits: dict | None = None,
                names=None) -> Report:
    """Run every check on planar (C, N) audio (and against `reference`, same shape, if given;
    an array or a `reference_signal`); only the checks in `names`, if given.

    NaN/Inf samples fail `nonfinite_samples`; the other metrics see them as zeros so the report
    still says what else is wrong. Raises BadInput for a wrong rate, shape or reference."""
    x = validate(audio, sr)
    if x.shape[1] < MIN_SAMPLES:
        raise BadInput(None, f"audio has {x.shape[1]} samples; the checks need at least "
                             f"{MIN_SAMPLES} ({MIN_SAMPLES / sr:.2f} s: 16 latent frames, so the "
                             f"comb and flicker spectra resolve the 21.5 Hz lines)")
    limits = limits or thresholds()
    wanted = set(FREE) | set(RELATIVE) if names is None else set(names)
    if unknown := wanted - set(FREE) - set(RELATIVE):
        raise ValueError(f"no such checks: {sorted(unknown)}")
    # counted on the raw samples: the metrics below see NaN/Inf as zeros
    values = {"nonfinite_samples": m.nonfinite_samples(x)} if "nonfinite_samples" in wanted else {}
    s = m.Signal(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), sr)
    for name, fn in FREE.items():
        if name in wanted:
            values.setdefault(name, fn(s))
    if reference is not None:
        ref = reference if isinstance(reference, m.Signal) else reference_signal(reference, sr)
        if ref.sr != sr or ref.shape != x.shape:
            raise BadInput(None, f"reference has shape {ref.shape} at {ref.sr} Hz, "
                                 f"audio has {x.shape} at {sr} Hz")
        for name, fn in RELATIVE.items():
            if name in wanted:
                values[name] = fn(s, ref)
    return Report([Check(n, float(v), limits[n], _passes(float(v), limits[n]))
                   for n, v in values.items()])
