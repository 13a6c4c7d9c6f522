"""A comparison as Markdown (one table per case) and as JSON (same content, machine-readable)."""

from __future__ import annotations

import math

from harness.compare.divergence import CaseResult, Row


def _db(x: float) -> str:
    return f"{x:.1f}" if math.isfinite(x) else str(x)


def _row_json(r: Row) -> dict:
    return {"name": r.name, "group": r.group, "shape": list(r.shape),
            "tolerance": {"snr_db": r.tolerance.snr_db, "cosine": r.tolerance.cosine,
                          "measured_db": r.tolerance.measured_db},
            "metrics": r.full.to_dict(), "passed": r.passed,
            "replay": r.local.to_dict(), "replay_passed": r.local_passed,
            "teacher_forced": r.forced}


def to_json(result: CaseResult) -> dict:
    first = result.first
    return {"case": result.case, "producer": result.producer, "dtype": result.dtype,
            "policy": result.policy.label, "passed": result.passed,
            "verdict": result.verdict(),
            "first_divergence": None if first is None else {
                "name": first.name, "where": first.where,
                "reason": first.tolerance.why_not(first.full)},
            "notes": result.notes, "tensors": [_row_json(r) for r in result.rows]}


def to_markdown(result: CaseResult) -> str:
    lines = [f"## {result.case}: {result.producer} golden vs MLX {result.dtype}",
             "", f"policy: {result.policy.label}", "", f"**{result.verdict()}**", ""]
    lines += [f"- {n}" for n in result.notes]
    if result.notes:
        lines.append("")
    lines += ["replay = the MLX module run on the golden's own input to it (teacher forcing); "
              "forced = the golden records every input of the module (else a replay failure "
              "is 'local or inherited').", "",
              "| # | tensor | shape | SNR dB | floor dB | cosine | max abs | max rel | ok "
              "| replay SNR dB | replay ok | forced |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    first = result.first
    for i, r in enumerate(result.rows):
        name = f"**{r.name}**" if r is first else r.name
        lines.append(
            f"| {i} | {name} | {'x'.join(map(str, r.shape))} | {_db(r.full.snr_db)} | "
            f"{r.tolerance.snr_db:g} | {r.full.cosine:.10f} | {r.full.max_abs:.3g} | "
            f"{r.full.max_rel:.3g} | {'yes' if r.passed else 'NO'} | {_db(r.local.snr_db)} | "
            f"{'yes' if r.local_passed else 'NO'} | {'yes' if r.forced else 'no'} |")
    return "\n".join(lines) + "\n"
