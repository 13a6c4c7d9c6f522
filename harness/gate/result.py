"""What a gate run produces: stages with a status each, and the verdict derived from them.

Fail closed: the verdict is "accept" only when every stage the mode requires ran and passed
and no stage failed or raised. A stage that is missing (never ran, cut by the timeout)
cannot pass, so it cannot turn into an accept. A check that said no is "reject" (exit 1); a
run that could not decide (an internal error or the timeout, and no check said no) is
"error" (exit 3): never an accept, and never read as a verdict on the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PASS, FAIL, ERROR, SKIP, INFO = "pass", "fail", "error", "skip", "info"


def jsonable(v):
    """Floats as JSON allows (inf/nan spelled as strings), recursively."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


@dataclass
class Stage:
    name: str
    status: str = SKIP
    summary: str = ""
    reasons: list[str] = field(default_factory=list)  # why it failed, one line each
    rows: list[dict] = field(default_factory=list)    # table rows for the report
    required: bool = True                             # part of the verdict in this mode
    seconds: float = 0.0
    data: dict = field(default_factory=dict)          # arrays for plots; not serialized

    def fail(self, reason: str) -> None:
        self.status = FAIL
        self.reasons.append(reason)

    def to_dict(self) -> dict:
        return jsonable({"name": self.name, "status": self.status, "required": self.required,
                         "summary": self.summary, "reasons": self.reasons, "rows": self.rows,
                         "seconds": round(self.seconds, 3)})


@dataclass
class GateResult:
    expect: str
    required: tuple[str, ...]
    stages: list[Stage] = field(default_factory=list)
    subjects: dict = field(default_factory=dict)  # candidate / baseline: path, sha256, ...
    notes: list[str] = field(default_factory=list)
    timed_out: bool = False
    provenance: dict = field(default_factory=dict)  # harness version, commit, device, host

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def reasons(self) -> list[str]:
        out = [f"{s.name}: {r}" for s in self.stages if s.status in (FAIL, ERROR)
               for r in (s.reasons or [s.summary])]
        causes = bool(out)  # a skipped stage after a failure is its consequence, not news
        for name in self.required:
            s = self.stage(name)
            if s is None:
                out.append(f"{name}: did not run")
            elif s.status == SKIP and not causes:
                out.append(f"{name}: required but skipped ({s.summary})")
        return out

    @property
    def verdict(self) -> str:
        ok = (all((s := self.stage(n)) is not None and s.status == PASS for n in self.required)
              and not any(s.status in (FAIL, ERROR) for s in self.stages))
        if ok and not self.reasons:
            return "accept"
        undecided = (any(s.status == ERROR for s in self.stages)
                     and not any(s.status == FAIL for s in self.stages))
        return "error" if undecided else "reject"

    @property
    def exit_code(self) -> int:
        return {"accept": 0, "reject": 1}.get(self.verdict, 3)

    @property
    def passed(self) -> bool:
        return self.verdict == "accept"

    def to_dict(self) -> dict:
        error = None if self.verdict != "error" else "; ".join(self.reasons)
        return jsonable({"passed": self.passed, "verdict": self.verdict, "error": error,
                         "reasons": self.reasons, "expect": self.expect,
                         "required": list(self.required), "notes": self.notes,
                         "subjects": self.subjects, "provenance": self.provenance,
                         "stages": [s.to_dict() for s in self.stages]})
