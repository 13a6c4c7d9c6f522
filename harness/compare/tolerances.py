# placeholder during measurement
from __future__ import annotations
import math
from dataclasses import dataclass
from harness.compare.store import group_of
from harness.errors import BadInput

@dataclass(frozen=True)
class Tolerance:
    snr_db: float
    cosine: float
    def accepts(self, m): return m.snr_db >= self.snr_db and m.cosine >= self.cosine
    def why_not(self, m): return f"SNR {m.snr_db:.1f} dB < {self.snr_db:g} dB"

@dataclass(frozen=True)
class Policy:
    label: str
    groups: dict
    def tolerance(self, name): return self.groups.get(group_of(name))

def policy_for(producer, dtype):
    t = Tolerance(80, 0)
    return Policy("tmp", {g: t for g in ("t5", "conditioner", "dit", "sampler", "vae")})
