"""Results of `port check`: per-tensor rows, per-stage verdicts, the whole report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.compare.metrics import Metrics

PASS, FAIL, NOT_COVERED = "pass", "fail", "not covered"


@dataclass
class TensorRow:
    name: str
    metrics: Metrics
    floor_db: float
    passed: bool
    why: str = ""
    local: bool | None = None     # replay verdict (None: the adapter captures no layers)

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "floor_db": self.floor_db,
                "local_failed": self.local, **self.metrics.to_dict()}


@dataclass
class StageResult:
    name: str
    verdict: str
    detail: str
    first_divergence: str | None = None
    where: str | None = None
    snr_db: float | None = None
    seconds: float | None = None
    bundled_seconds: float | None = None
    rows: list[TensorRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        snr = self.snr_db
        return {"name": self.name, "verdict": self.verdict, "detail": self.detail,
                "first_divergence": self.first_divergence, "where": self.where,
                "snr_db": snr if snr is None or math.isfinite(snr) else str(snr),
                "seconds": self.seconds, "bundled_seconds": self.bundled_seconds,
                "tensors": [r.to_dict() for r in self.rows]}


@dataclass
class PortReport:
    port: str
    adapter: str
    case: str
    weights: str
    stages: list[StageResult]

    @property
    def covered(self) -> list[StageResult]:
        return [s for s in self.stages if s.verdict != NOT_COVERED]

    @property
    def passed(self) -> bool:
        return bool(self.covered) and all(s.verdict == PASS for s in self.covered)

    @property
    def first_failure(self) -> StageResult | None:
        return next((s for s in self.stages if s.verdict == FAIL), None)

    def stage(self, name: str) -> StageResult:
        """The named stage's result; a stage left out of the run is not covered."""
        return next((s for s in self.stages if s.name == name),
                    StageResult(name, NOT_COVERED, "not checked in this run"))

    def to_dict(self) -> dict:
        return {"port": self.port, "adapter": self.adapter, "passed": self.passed,
                "golden": self.case, "weights": self.weights,
                "stages": [s.to_dict() for s in self.stages]}
