"""Per-tensor agreement between a tensor under test and its reference (float64 throughout).

- max_abs: max |a - r|
- max_rel: max |a - r| / max |r|, relative to the reference's range (an elementwise ratio
  explodes near the zeros every activation has, so it would say nothing)
- cosine:  <a, r> / (|a| |r|); 1 when both are all-zero, 0 when only one is
- snr_db:  10·log10(Σr² / Σ(a - r)²); +inf when equal, -inf when r is all-zero and a is not
NaN anywhere in `a` makes every metric NaN, which fails every tolerance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    max_abs: float
    max_rel: float
    cosine: float
    snr_db: float

    def to_dict(self) -> dict[str, float | str]:
        # JSON has no inf/nan: spell them as strings
        return {k: (v if math.isfinite(v) else str(v)) for k, v in asdict(self).items()}


def measure(actual, reference) -> Metrics:
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {r.shape}")
    if not np.all(np.isfinite(a)):
        nan = float("nan")
        return Metrics(nan, nan, nan, nan)
    d = a - r
    max_abs = float(np.max(np.abs(d))) if d.size else 0.0
    r_peak = float(np.max(np.abs(r))) if r.size else 0.0
    max_rel = max_abs / r_peak if r_peak > 0 else (0.0 if max_abs == 0 else math.inf)
    na, nr = float(np.sqrt(np.sum(a * a))), float(np.sqrt(np.sum(r * r)))
    if na == 0 or nr == 0:
        cosine = 1.0 if na == nr else 0.0
    else:
        cosine = float(np.sum(a * r) / (na * nr))
    signal, noise = float(np.sum(r * r)), float(np.sum(d * d))
    if noise == 0:
        snr = math.inf
    elif signal == 0:
        snr = -math.inf
    else:
        snr = 10.0 * math.log10(signal / noise)
    return Metrics(max_abs, max_rel, cosine, snr)
