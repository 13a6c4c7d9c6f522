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
    from harness.provenance import provenance

    first = result.first
    return {"case": result.case, "producer": result.producer, "dtype": result.dtype,
            "policy": result.policy.label, "device": result.policy.device,
            "policy_calibrated": result.policy.calibrated, "provenance": provenance(),
            "passed": result.passed,
            "verdict": result.verdict(),
            "first_divergence": None if first is None else {
                "name": first.name, "where": first.where,
                "reason": first.tolerance.why_not(first.full)},
            "notes": result.notes, "tensors": [_row_json(r) for r in result.rows]}


def to_markdown(result: CaseResult, plot: str | None = None) -> str:
    """Verdict, run provenance and policy first, then the per-layer plot (`plot`: its file or
    data URI), then the table of every tensor, collapsed."""
    from harness.provenance import one_line, provenance

    lines = [f"## {result.case}: {'PASS' if result.passed else 'FAIL'}: {result.producer} golden "
             f"vs MLX {result.dtype}", "", f"**{result.verdict()}**", "",
             f"Run: `{one_line(provenance())}`", "", f"policy: {result.policy.label}", ""]
    lines += [f"- {n}" for n in result.notes]
    if result.notes:
        lines.append("")
    if plot:
        lines += [f"![per-layer SNR against the golden]({plot})", ""]
    lines += [f"<details><summary>{len(result.rows)} tensors in execution order</summary>", "",
              "replay = the MLX module run on the golden's own input to it (teacher forcing); "
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
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
