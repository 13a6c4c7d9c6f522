"""`port check`'s Markdown report (the CLI's --report and the pytest plugin's report dir)."""

from __future__ import annotations


def fmt_seconds(s) -> str:
    return "-" if s is None else f"{s:.3g} s"


def to_markdown(report) -> str:
    lines = [f"# port check: {report.port} ({report.adapter})", "",
             f"golden `{report.case}`, weights `{report.weights}`: "
             f"**{'PASS' if report.passed else 'FAIL'}**", "",
             "| stage | verdict | first divergence | SNR dB | port | bundled | detail |",
             "|---|---|---|---|---|---|---|"]
    for s in report.stages:
        snr = "" if s.snr_db is None else f"{s.snr_db:.1f}"
        lines.append(f"| {s.name} | {s.verdict} | {s.first_divergence or ''} | {snr} | "
                     f"{fmt_seconds(s.seconds)} | {fmt_seconds(s.bundled_seconds)} | {s.detail} |")
    return "\n".join(lines) + "\n"
