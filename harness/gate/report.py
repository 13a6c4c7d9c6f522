"""The gate's report: report.md (also the CI job summary), report.html (self-contained, plots
embedded as base64 PNG), the plots as PNG files, result.json and junit.xml.

Both documents are rendered from one list of blocks (headings, paragraphs, lists, tables,
images), so they always say the same thing.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from harness.errors import BadInput
from harness.gate.result import GateResult

PLOT_CEILING_DB = 160.0  # inf SNR (bit-equal) is drawn here
MD_WINDOW = 6            # Markdown first-divergence table: rows either side of it


@dataclass
class Table:
    header: list[str]
    rows: list[list]
    caption: str = ""
    md_rows: int | None = None  # Markdown shows only this many rows (HTML shows all)...
    md_start: int = 0           # ...from this one


@dataclass
class Image:
    file: str
    alt: str


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return v
    return str(v)


def _db(v) -> float:
    v = float(v)
    return PLOT_CEILING_DB if v == math.inf else v


# -- plots ------------------------------------------------------------------------------
def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_per_layer(series: list[tuple], path: Path, title: str,
                   marks: list[str | None] | None = None) -> Path:
    """SNR by module in execution order; one panel per series (label, [(module, snr)],
    tolerance per module or None[, SNR on the reference's own input per module]). Modules
    below their tolerance are drawn red."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(series), 1, figsize=(13, 4.4 * len(series)), squeeze=False)
    for k, (ax, entry) in enumerate(zip(axes[:, 0], series)):
        label, points, tol = entry[:3]
        local = entry[3] if len(entry) > 3 else None
        names = [n for n, _ in points]
        x = np.arange(len(points))
        y = np.array([_db(v) for _, v in points])
        ax.plot(x, y, "-", color="0.6", lw=0.8)
        bad = np.array([tol is not None and v < t for v, t in zip(y, tol or [0] * len(y))],
                       dtype=bool)
        ax.scatter(x[~bad], y[~bad], s=14, color="tab:blue", label="SNR", zorder=3)
        if bad.any():
            ax.scatter(x[bad], y[bad], s=18, color="tab:red", label="below tolerance", zorder=4)
        if local is not None:
            ax.scatter(x, [_db(v) for v in local], s=22, facecolors="none", edgecolors="tab:green",
                       label="SNR on the reference's input (local)", zorder=2)
        if tol is not None:
            ax.step(x, [_db(t) for t in tol], where="mid", color="tab:orange", lw=1,
                    label="tolerance")
        mark = (marks or [None] * len(series))[k]
        if mark is not None and mark in names:
            i = names.index(mark)
            ax.axvline(i, color="tab:red", ls="--", lw=1)
            ax.annotate(f"first divergence: {mark}", (i, 0.97), xycoords=("data", "axes fraction"),
                        fontsize=7, color="tab:red", xytext=(4, 0), textcoords="offset points",
                        va="top")
        groups = [n.split(".")[0] if not n.startswith("model.model") else "dit" for n in names]
        for i, g in enumerate(groups):
            if i == 0 or groups[i - 1] != g:
                ax.axvline(i - 0.5, color="0.85", lw=0.8, zorder=0)
                ax.text(i, 1.0, g, transform=ax.get_xaxis_transform(), fontsize=7,
                        va="bottom", color="0.4")
        ax.set_ylabel("SNR dB")
        ax.set_title(label, fontsize=9, pad=14)
        ax.set_xlim(-1, max(len(points), 1))
        step = max(1, len(points) // 60)
        ax.set_xticks(x[::step])
        ax.set_xticklabels([n[-34:] for n in names][::step], rotation=80, fontsize=5.5,
                           ha="right")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
        ax.grid(axis="y", color="0.9")
    fig.suptitle(f"{title} (inf drawn at {PLOT_CEILING_DB:g} dB)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_spectrograms(audio: np.ndarray, reference: np.ndarray | None, sr: int, path: Path,
                      labels: list[str]) -> Path:
    """Log-magnitude spectrogram (mid channel) per clip: generated | approved."""
    from scipy import signal

    plt = _pyplot()
    cols = 2 if reference is not None else 1
    fig, axes = plt.subplots(audio.shape[0], cols, figsize=(6 * cols, 2.8 * audio.shape[0]),
                             squeeze=False)
    nper = min(1024, audio.shape[-1])
    for b in range(audio.shape[0]):
        pairs = [("candidate", audio[b])] + ([("approved", reference[b])] if cols == 2 else [])
        for c, (who, x) in enumerate(pairs):
            f, t, s = signal.stft(np.asarray(x, np.float64).mean(axis=0), sr, nperseg=nper)
            db = 20 * np.log10(np.abs(s) + 1e-9)
            ax = axes[b, c]
            im = ax.pcolormesh(t, f / 1000, db, shading="auto", vmin=db.max() - 90, vmax=db.max(),
                               cmap="magma")
            ax.set_title(f"{who}: {labels[b]}", fontsize=8)
            ax.set_ylabel("kHz")
            ax.set_xlabel("s")
            fig.colorbar(im, ax=ax, label="dB")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# -- content ----------------------------------------------------------------------------
def blocks(result: GateResult, plots: dict[str, Path]) -> list:
    d = result.to_dict()
    out: list = [("h1", f"Weight gate: {result.verdict.upper()}"),
                 ("p", f"Mode: --expect {result.expect}. Exit code {result.exit_code}.")]
    for who in ("candidate", "baseline"):
        s = d["subjects"].get(who)
        if s:
            out.append(("p", f"{'Candidate' if who == 'candidate' else 'Approved'}: "
                             f"`{s['path']}` (sha256 `{s['sha256']}`, preset {s['preset']})"))
    if result.notes:
        out += [("h2", "Notes"), ("ul", result.notes)]
    reasons = result.reasons
    out += [("h2", "Reasons"), ("ul", reasons)] if reasons else [("h2", "Reasons: none")]
    out += [("h2", "Stages"), Table(
        ["stage", "status", "in verdict", "summary", "s"],
        [[s.name, s.status.upper(), "yes" if s.required else "no", s.summary,
          f"{s.seconds:.1f}"] for s in result.stages])]
    for s in result.stages:
        fn = SECTIONS.get(s.name)
        if fn is not None and (s.rows or s.data):
            out += fn(s, plots)
        tb = s.data.get("traceback")
        if tb:
            out += [("h3", f"Traceback ({s.name})"), ("pre", tb)]
    return out


def _structure(s, plots):
    return [("h2", "Structure"), Table(["item", "value"], [[r["item"], r["value"]] for r in s.rows])]


def _weights(s, plots):
    rows = [[r["name"], r["kind"], r["detail"], _fmt(r["snr_db"]), _fmt(r["max_abs"])]
            for r in s.rows]
    counts = s.data.get("counts", {})
    return [("h2", "Weights vs the approved checkpoint"),
            ("p", "Tensor by tensor: " + ", ".join(f"{n} {k}" for k, n in counts.items())
             + ". Identical tensors are not listed."),
            Table(["tensor", "class", "detail", "SNR dB", "max abs"], rows, md_rows=25)]


def _parity(s, plots):
    out = [("h2", "Parity with the reference's goldens"),
           Table(["case", "producer", "policy", "tensors", "passed", "verdict"],
                 [[r["case"], r["producer"], r["policy"], r["tensors"], r["passed"],
                   r["verdict"]] for r in s.rows])]
    for res in s.data.get("cases", []):
        first = res.first
        i0 = res.rows.index(first) if first else min(
            range(len(res.rows)), key=lambda i: res.rows[i].full.snr_db - res.rows[i].tolerance.snr_db)
        rows = [[("**>** " if r is first else "") + r.name, r.group, "x".join(map(str, r.shape)),
                 _fmt(r.full.snr_db), _fmt(r.local.snr_db), _fmt(r.full.cosine),
                 f">= {r.tolerance.snr_db:g}", "ok" if r.passed else "FAIL"] for r in res.rows]
        lo = max(0, i0 - MD_WINDOW)
        title = "First divergence" if first else "Closest to tolerance (no divergence)"
        out += [("h3", f"{title}: {res.case}"), ("p", res.verdict()),
                Table(["module (execution order)", "group", "shape", "SNR dB (free run)",
                       "SNR dB (on reference input)", "cosine", "tolerance", ""],
                      rows, md_rows=2 * MD_WINDOW + 1, md_start=lo,
                      caption=f"{'first divergence' if first else 'smallest margin'} at row "
                              f"#{i0} of {len(rows)}, in execution order")]
    if "parity" in plots:
        out.append(Image(plots["parity"].name, "per-layer SNR against the goldens"))
    return out


def _drift(s, plots):
    rows = [[r["stage"], r["name"], _fmt(r["snr_db"]), _fmt(r["max_abs"]), _fmt(r["rel_max"]),
             "-" if r["min_snr_db"] is None else f">= {_fmt(r['min_snr_db'])}",
             "-" if r["min_snr_db"] is None else "ok" if r["passed"] else "FAIL"] for r in s.rows]
    out = [("h2", "Drift vs the approved checkpoint (fixed inputs and noise)"), ("p", s.summary),
           Table(["stage", "output", "SNR dB", "max abs", "max abs / peak", "required", ""], rows)]
    if "drift" in plots:
        out.append(Image(plots["drift"].name, "per-layer drift SNR"))
    return out


def _audio(s, plots):
    by_name: dict[str, dict] = {}
    for r in s.rows:
        e = by_name.setdefault(r["name"], {"threshold": r["threshold"], "values": {}, "ok": True})
        e["values"][r["clip"]] = r["value"]
        e["ok"] = e["ok"] and r["passed"]
    clips = sorted({r["clip"] for r in s.rows})
    rows = [[n, *[_fmt(e["values"].get(c, "")) for c in clips],
             " ".join(f"{k} {v:g}" for k, v in e["threshold"].items()),
             "ok" if e["ok"] else "FAIL"] for n, e in by_name.items()]
    out = [("h2", "Audio checks on generated audio"), ("p", s.summary)]
    if rows:
        out.append(Table(["check", *[f"clip {c}" for c in clips], "threshold", ""], rows))
    if "spectrograms" in plots:
        out.append(Image(plots["spectrograms"].name, "spectrograms, candidate vs approved"))
    return out


SECTIONS = {"structure": _structure, "weights": _weights, "parity": _parity,
            "drift": _drift, "audio": _audio}


# -- rendering ----------------------------------------------------------------------------
def _md_cell(v) -> str:
    return _fmt(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(items: list) -> str:
    lines = []
    for b in items:
        if isinstance(b, Table):
            end = len(b.rows) if b.md_rows is None else b.md_start + b.md_rows
            rows = b.rows[b.md_start:end]
            lines += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            if len(rows) < len(b.rows):
                lines.append(f"\n_rows {b.md_start}..{b.md_start + len(rows) - 1} of "
                             f"{len(b.rows)}; report.html has them all_")
            if b.caption:
                lines.append(f"\n_{b.caption}_")
            lines.append("")
        elif isinstance(b, Image):
            lines += [f"![{b.alt}]({b.file})", ""]
        else:
            kind, text = b
            if kind in ("h1", "h2", "h3"):
                lines += ["#" * int(kind[1]) + " " + text, ""]
            elif kind == "ul":
                lines += [f"- {t}" for t in text] + [""]
            elif kind == "pre":
                lines += ["```", text.rstrip(), "```", ""]
            else:
                lines += [text, ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escape, then the Markdown we use inline: `code` and **bold**."""
    parts = html.escape(text).split("`")
    s = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = s.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td:nth-child(n+3){font-variant-numeric:tabular-nums}
.FAIL,.ERROR,.REJECT{color:#b00020;font-weight:bold}.PASS,.ACCEPT,.ok{color:#1b7f2a}
img{max-width:100%;border:1px solid #ddd} pre{background:#f6f6f6;padding:1em;overflow:auto}
caption{caption-side:bottom;font-style:italic;text-align:left;color:#555}"""


HTML_OPEN_ROWS = 100  # longer tables are collapsed (still whole) so the plots stay in view


def to_html(items: list, images: dict[str, bytes], title: str) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>"]
    for b in items:
        if isinstance(b, Table):
            long = len(b.rows) > HTML_OPEN_ROWS  # every-step goldens: hundreds of tensors
            if long:
                out.append(f"<details><summary>{len(b.rows)} rows</summary>")
            out.append("<table>")
            if b.caption:
                out.append(f"<caption>{html.escape(b.caption)}</caption>")
            out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.header) + "</tr>")
            for r in b.rows:
                cells = []
                for c in r:
                    t = _fmt(c)
                    cls = f" class='{t}'" if t in ("FAIL", "ERROR", "PASS", "ok") else ""
                    cells.append(f"<td{cls}>{_inline(t)}</td>")
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</table>" + ("</details>" if long else ""))
        elif isinstance(b, Image):
            data = base64.b64encode(images[b.file]).decode()
            out.append(f"<p><img alt='{html.escape(b.alt)}' src='data:image/png;base64,{data}'>"
                       f"<br><small>{html.escape(b.file)}</small></p>")
        else:
            kind, text = b
            if kind in ("h1", "h2", "h3"):
                cls = ""
                if kind == "h1":
                    cls = f" class='{text.split()[-1]}'"
                out.append(f"<{kind}{cls}>{_inline(text)}</{kind}>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{_inline(t)}</li>" for t in text) + "</ul>")
            elif kind == "pre":
                out.append(f"<pre>{html.escape(text)}</pre>")
            else:
                out.append(f"<p>{_inline(text)}</p>")
    out.append("</body></html>")
    return "\n".join(out)


def to_junit(result: GateResult) -> str:
    suite = ET.Element("testsuite", name="sao-harness gate", tests=str(len(result.stages)))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for s in result.stages:
        case = ET.SubElement(suite, "testcase", classname=f"gate.{result.expect}", name=s.name,
                             time=f"{s.seconds:.3f}")
        msg = "; ".join(s.reasons) or s.summary
        if s.status == "fail":
            ET.SubElement(case, "failure", message=msg[:2000]).text = "\n".join(s.reasons)
            counts["failures"] += 1
        elif s.status == "error":
            ET.SubElement(case, "error", message=msg[:2000]).text = s.data.get(
                "traceback", "\n".join(s.reasons))
            counts["errors"] += 1
        elif s.status == "skip":
            ET.SubElement(case, "skipped", message=s.summary)
            counts["skipped"] += 1
        else:
            ET.SubElement(case, "system-out").text = f"{s.status}: {s.summary}"
    verdict = ET.SubElement(suite, "testcase", classname=f"gate.{result.expect}", name="verdict")
    if result.verdict != "accept":
        ET.SubElement(verdict, "failure", message="reject").text = "\n".join(result.reasons)
        counts["failures"] += 1
    suite.set("tests", str(len(result.stages) + 1))
    for k, v in counts.items():
        suite.set(k, str(v))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def make_plots(result: GateResult, out: Path) -> dict[str, Path]:
    plots = {}
    parity = result.stage("parity")
    if parity is not None and parity.data.get("cases"):
        series = [(f"{r.case} ({r.producer}): free run vs golden",
                   [(row.name, row.full.snr_db) for row in r.rows],
                   [row.tolerance.snr_db for row in r.rows],
                   [row.local.snr_db for row in r.rows]) for r in parity.data["cases"]]
        marks = [r.first.name if r.first else None for r in parity.data["cases"]]
        plots["parity"] = plot_per_layer(series, out / "per_layer_parity.png",
                                         "Per-layer SNR against the reference goldens", marks)
    drift_st = result.stage("drift")
    if drift_st is not None and drift_st.data.get("modules"):
        mods = drift_st.data["modules"]
        plots["drift"] = plot_per_layer(
            [("candidate vs approved, end-to-end run (DiT modules at sampler step 0)", mods, None)],
            out / "per_layer_drift.png", "Per-layer drift against the approved checkpoint")
    audio = result.stage("audio")
    if audio is not None and "audio" in audio.data:
        from harness.gate.drift import PROMPTS
        plots["spectrograms"] = plot_spectrograms(audio.data["audio"], audio.data.get("reference"),
                                                  audio.data["sr"], out / "spectrograms.png",
                                                  list(PROMPTS))
    return plots


def write_report(result: GateResult, out: str | Path) -> dict[str, Path]:
    """Write every report file into `out`; returns name -> path."""
    out = Path(out)
    plots = make_plots(result, out)
    items = blocks(result, plots)
    images = {p.name: p.read_bytes() for p in plots.values()}
    files = {"report.md": to_markdown(items),
             "report.html": to_html(items, images, f"sao-harness gate: {result.verdict}"),
             "junit.xml": to_junit(result),
             "result.json": json.dumps(result.to_dict(), indent=1) + "\n"}
    paths = dict(plots)
    for name, text in files.items():
        (out / name).write_text(text)
        paths[name] = out / name
    return paths


def write_minimal(result: GateResult, out: str | Path) -> None:
    """Best effort after a failed write_report: result.json, junit.xml and report.md without
    plots, so no half-written file can be read as the verdict; stale plots are removed."""
    out = Path(out)
    try:
        for png in out.glob("*.png"):
            png.unlink()
        (out / "report.html").unlink(missing_ok=True)
        (out / "result.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
        (out / "junit.xml").write_text(to_junit(result))
        (out / "report.md").write_text(to_markdown(blocks(result, {})))
    except Exception:  # noqa: BLE001 - the exit code already says reject
        pass


def prepare_dir(out: str | Path) -> Path:
    """Create the report directory up front, so an unwritable one is bad input (exit 2)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise BadInput(out, f"cannot write the report here: {e.strerror or e}") from None
    return out
