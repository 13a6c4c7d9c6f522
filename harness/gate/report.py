"""The gate's report: report.md (links its plots and clips as files beside it), summary.md (the
CI job summary: the same with the plots inlined as base64 data URIs, since a job summary
cannot show files from the runner), report.html (self-contained: plots and, when small, the
clips embedded), the plots as PNG, the clips as WAV, result.json and junit.xml.

Reading order: verdict, provenance (harness version, commit, device, host), reasons, then the
plots and the approved/candidate clips, then the tables (long ones collapsed in <details>).
Both documents are rendered from one list of blocks, so they always say the same thing.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from harness.errors import BadInput, one_line
from harness.files import follow_umask
from harness.gate.drift import stage_of
from harness.gate.result import GateResult
from harness.model import prefixes

PLOT_CEILING_DB = 160.0  # inf SNR (bit-equal) is drawn here
MD_WINDOW = 6            # Markdown first-divergence table: rows either side of it
COLLAPSE_ROWS = 12       # tables longer than this are collapsed (<details>)
SUMMARY_IMAGE_BYTES = 900_000  # GitHub caps a step's job summary at 1 MiB: plots inlined up to this
EMBED_AUDIO_BYTES = 8_000_000  # report.html embeds the clips up to this, else links the WAVs
INFO_OUTSIDE = "outside (info only)"  # a check past its threshold in a stage outside the verdict


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


@dataclass
class Audio:
    clips: list[tuple[str, str]]  # (label, WAV file beside the report)


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
        groups = [prefixes.part_of(n) or n.split(".")[0] for n in names]
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
    """Log-magnitude spectrogram (mid channel) per clip: candidate | approved | candidate -
    approved. One colour scale for every candidate and approved panel (the loudest bin of
    all of them down 90 dB), a symmetric one for the differences."""
    from scipy import signal

    plt = _pyplot()
    nper = min(1024, audio.shape[-1])

    def spec(x):
        f, t, z = signal.stft(np.asarray(x, np.float64).mean(axis=0), sr, nperseg=nper)
        return f, t, 20 * np.log10(np.abs(z) + 1e-9)

    cand = [spec(x) for x in audio]
    ref = [spec(x) for x in reference] if reference is not None else None
    top = max(float(d.max()) for _, _, d in cand + (ref or []))
    cols = 3 if ref is not None else 1
    fig, axes = plt.subplots(audio.shape[0], cols, figsize=(5.2 * cols, 2.9 * audio.shape[0]),
                             squeeze=False)
    for b in range(audio.shape[0]):
        panels = [("candidate", cand[b])] + ([("approved", ref[b])] if ref is not None else [])
        for c, (who, (f, t, db)) in enumerate(panels):
            im = axes[b, c].pcolormesh(t, f / 1000, db, shading="auto", vmin=top - 90, vmax=top,
                                       cmap="magma")
            axes[b, c].set_title(f"{who}: {labels[b]}", fontsize=8)
        if ref is not None:
            f, t, dc = cand[b]
            diff = dc - ref[b][2] if ref[b][2].shape == dc.shape else np.zeros_like(dc)
            lim = max(1.0, float(np.percentile(np.abs(diff), 99.5)))
            im_d = axes[b, 2].pcolormesh(t, f / 1000, diff, shading="auto", vmin=-lim, vmax=lim,
                                         cmap="RdBu_r")
            axes[b, 2].set_title(f"candidate - approved (dB): {labels[b]}", fontsize=8)
            fig.colorbar(im_d, ax=axes[b, 2], label="dB")
        for ax in axes[b]:
            ax.set_ylabel("kHz")
            ax.set_xlabel("s")
        fig.colorbar(im, ax=list(axes[b, : 2 if ref is not None else 1]), label="dB (shared)")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_clips(audio: np.ndarray, reference: np.ndarray | None, sr: int, out: Path) -> list:
    """16-bit WAVs of the candidate's and the approved model's clips -> [(label, file)]."""
    from harness.audio.io import save

    clips = []
    for b in range(audio.shape[0]):
        for who, a in (("candidate", audio), ("approved", reference)):
            if a is None:
                continue
            name = f"{who}-{b}.wav"
            save(out / name, np.clip(np.nan_to_num(a[b]), -1, 1), sr, subtype="PCM_16")
            clips.append((f"{who}, clip {b}", name))
    return clips


# -- content ----------------------------------------------------------------------------
def blocks(result: GateResult, plots: dict[str, Path], clips: list | None = None) -> list:
    from harness.provenance import one_line

    d = result.to_dict()
    out: list = [("h1", f"Weight gate: {result.verdict.upper()}"),
                 ("p", f"Mode: --expect {result.expect}. Exit code {result.exit_code}.")]
    if result.provenance:
        out.append(("p", f"Run: `{one_line(result.provenance)}`"))
    for who in ("candidate", "baseline"):
        s = d["subjects"].get(who)
        if s:
            out.append(("p", f"{'Candidate' if who == 'candidate' else 'Approved'}: "
                             f"`{s['path']}` (sha256 `{s['sha256']}`, preset {s['preset']})"))
    if result.notes:
        out += [("h2", "Notes"), ("ul", result.notes)]
    reasons = result.reasons
    out += [("h2", "Reasons"), ("ul", reasons)] if reasons else [("h2", "Reasons: none")]
    details: list = [("h2", "Stages"), Table(
        ["stage", "status", "in verdict", "summary", "s"],
        [[s.name, s.status.upper(), "yes" if s.required else "no", s.summary,
          f"{s.seconds:.1f}"] for s in result.stages])]
    for s in result.stages:
        fn = SECTIONS.get(s.name)
        if fn is not None and (s.rows or s.data):
            details += fn(s, plots)
        tb = s.data.get("traceback")
        if tb:
            details += [("h3", f"Traceback ({s.name})"), ("pre", tb)]
    # Plots and clips first, the tables after them.
    figures = [b for b in details if isinstance(b, Image)]
    if clips:
        figures.append(Audio(clips))
    if figures:
        out += [("h2", "Plots"), *figures]
    return out + [b for b in details if not isinstance(b, Image)]


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
             "-" if r["min_snr_db"] is None else "ok" if r["passed"] else
             "FAIL" if s.required else INFO_OUTSIDE] for r in s.rows]
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
    bad = "FAIL" if s.required else INFO_OUTSIDE  # no red cell where nothing is judged
    rows = [[n, *[_fmt(e["values"].get(c, "")) for c in clips],
             " ".join(f"{k} {v:g}" for k, v in e["threshold"].items()),
             "ok" if e["ok"] else bad] for n, e in by_name.items()]
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
    return one_line(_fmt(v)).replace("|", "\\|")


def _collapsed(b: Table, shown: int) -> bool:
    return shown > COLLAPSE_ROWS


def to_markdown(items: list, images: dict[str, str] | None = None) -> str:
    """images: file -> what to put in the image link instead of the file name (data URIs
    for the job summary)."""
    lines = []
    for b in items:
        if isinstance(b, Table):
            end = len(b.rows) if b.md_rows is None else b.md_start + b.md_rows
            rows = b.rows[b.md_start:end]
            fold = _collapsed(b, len(rows))
            if fold:  # GitHub renders Markdown inside <details> after a blank line
                lines += [f"<details><summary>{len(rows)} rows: {html.escape(b.header[0])}, "
                          f"{html.escape(b.header[1])}, ...</summary>", ""]
            lines += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            if len(rows) < len(b.rows):
                lines.append(f"\n_rows {b.md_start}..{b.md_start + len(rows) - 1} of "
                             f"{len(b.rows)}; report.html has them all_")
            if b.caption:
                lines.append(f"\n_{b.caption}_")
            lines.append("")
            if fold:
                lines += ["</details>", ""]
        elif isinstance(b, Image):
            lines += [f"![{b.alt}]({(images or {}).get(b.file, b.file)})", ""]
        elif isinstance(b, Audio):
            lines += ["Clips (WAV, in the report directory / artifact): "
                      + ", ".join(f"[{label}]({f})" for label, f in b.clips), ""]
        else:
            kind, text = b
            if kind in ("h1", "h2", "h3"):
                lines += ["#" * int(kind[1]) + " " + one_line(text), ""]
            elif kind == "ul":  # reasons carry file-derived text: one line each
                lines += [f"- {one_line(t)}" for t in text] + [""]
            elif kind == "pre":
                lines += ["```", text.rstrip(), "```", ""]
            else:
                lines += [one_line(text), ""]
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
caption{caption-side:bottom;font-style:italic;text-align:left;color:#555}
.clips{display:flex;flex-wrap:wrap;gap:.5em 2em}.clips figure{margin:0}
details summary{cursor:pointer;color:#444;margin:.3em 0}"""


def to_html(items: list, images: dict[str, bytes], title: str,
            sounds: dict[str, bytes] | None = None) -> str:
    """sounds: WAV file -> bytes to embed (else the player links the file beside the report)."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body>"]
    for b in items:
        if isinstance(b, Table):
            fold = _collapsed(b, len(b.rows))
            if fold:
                out.append(f"<details><summary>{len(b.rows)} rows: "
                           f"{html.escape(b.header[0])}, {html.escape(b.header[1])}, ..."
                           "</summary>")
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
            out.append("</table>")
            if fold:
                out.append("</details>")
        elif isinstance(b, Audio):
            players = []
            for label, f in b.clips:
                data = (sounds or {}).get(f)
                src = f"data:audio/wav;base64,{base64.b64encode(data).decode()}" if data else f
                players.append(f"<figure><figcaption>{html.escape(label)}</figcaption>"
                               f"<audio controls preload='none' src='{html.escape(src)}'></audio>"
                               "</figure>")
            out.append("<div class='clips'>" + "".join(players) + "</div>")
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
        ET.SubElement(verdict, "failure", message=result.verdict).text = "\n".join(result.reasons)
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
        limits = drift_st.data.get("limits")  # None: reported only (--expect update)
        tol = None if not limits else [limits[stage_of(n)] for n, _ in mods]
        what = "" if tol else " (reported only: no tolerance under --expect update)"
        plots["drift"] = plot_per_layer(
            [("candidate vs approved, end-to-end run (DiT modules at sampler step 0)" + what,
              mods, tol)],
            out / "per_layer_drift.png", "Per-layer drift against the approved checkpoint")
    audio = result.stage("audio")
    if audio is not None and "audio" in audio.data:
        from harness.gate.drift import PROMPTS
        plots["spectrograms"] = plot_spectrograms(audio.data["audio"], audio.data.get("reference"),
                                                  audio.data["sr"], out / "spectrograms.png",
                                                  list(PROMPTS))
    return plots


def shrink_png(data: bytes, width: int = 1000, colors: int = 96) -> bytes:
    """A plot small enough to inline: at most `width` px wide, a palette of `colors` (plots
    are flat colours; ~5x smaller than the full PNG)."""
    import io

    from PIL import Image as PILImage

    img = PILImage.open(io.BytesIO(data)).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), PILImage.LANCZOS)
    buf = io.BytesIO()
    img.quantize(colors=colors).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def summary_images(images: dict[str, bytes]) -> dict[str, str]:
    """Plots as data URIs for the job summary (shrunk), smallest first, within its size
    budget; the rest keep their file name (shown as a link)."""
    out, used = {}, 0
    small = {name: shrink_png(data) for name, data in images.items()}
    for name, data in sorted(small.items(), key=lambda kv: len(kv[1])):
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        if used + len(uri) <= SUMMARY_IMAGE_BYTES:
            out[name], used = uri, used + len(uri)
    return out


def _publish(out: Path, files, make=None) -> dict[str, Path]:
    """Write the report files into a hidden temporary directory inside `out`, then rename each
    into place, result.json last: an interrupted write leaves no partial file and no verdict.
    `make(tmp)` may first add files (plots) to the temporary directory; `files` is a dict of
    name -> text, or a function of make's result giving (name, text) pairs."""
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".report-tmp-"))
    try:
        made = make(tmp) if make else {}
        for name, text in (files(made) if callable(files) else files.items()):
            (tmp / name).write_text(text)
        names = sorted((p.name for p in tmp.iterdir()), key=lambda n: n == "result.json")
        for name in names:
            follow_umask(tmp / name)
            os.replace(tmp / name, out / name)
        return {n: out / n for n in names}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_report(result: GateResult, out: str | Path) -> dict[str, Path]:
    """Write every report file into `out` atomically; returns name -> path."""
    out = Path(out)

    def make(tmp: Path):
        plots = make_plots(result, tmp)
        audio = result.stage("audio")
        clips = []
        if audio is not None and "audio" in audio.data:
            clips = write_clips(audio.data["audio"], audio.data.get("reference"),
                                audio.data["sr"], tmp)
        return plots, clips, tmp

    def documents(made) -> list[tuple[str, str]]:
        plots, clips, tmp = made
        items = blocks(result, plots, clips)
        images = {p.name: p.read_bytes() for p in plots.values()}
        wavs = {f: (tmp / f).read_bytes() for _, f in clips}
        sounds = wavs if sum(map(len, wavs.values())) <= EMBED_AUDIO_BYTES else {}
        return [("report.md", to_markdown(items)),
                ("summary.md", to_markdown(items, summary_images(images))),
                ("report.html", to_html(items, images, f"sao-harness gate: {result.verdict}",
                                        sounds)),
                ("junit.xml", to_junit(result)),
                ("result.json", json.dumps(result.to_dict(), indent=1) + "\n")]

    return _publish(out, documents, make=make)


def write_minimal(result: GateResult, out: str | Path) -> None:
    """Best effort after a failed write_report: result.json, junit.xml and report.md without
    plots, so no half-written file can be read as the verdict; stale plots are removed."""
    out = Path(out)
    try:
        for stale in [*out.glob("*.png"), *out.glob("*.wav"), out / "summary.md"]:
            stale.unlink(missing_ok=True)
        (out / "report.html").unlink(missing_ok=True)
        _publish(out, {"report.md": to_markdown(blocks(result, {})),
                       "junit.xml": to_junit(result),
                       "result.json": json.dumps(result.to_dict(), indent=1) + "\n"})
    except Exception:  # noqa: BLE001 - the exit code already says reject
        pass


# The files of a report; all are removed before a run, so a verdict from an earlier run in a
# reused directory can never be read as this run's.
REPORT_FILES = ("result.json", "junit.xml", "report.md", "summary.md", "report.html")


def prepare_dir(out: str | Path) -> Path:
    """Create the report directory up front (an unwritable one is bad input, exit 2) and
    remove an earlier run's report from it, its verdict first."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in REPORT_FILES:
            (out / name).unlink(missing_ok=True)
        for made in [*out.glob("*.png"), *out.glob("*.wav")]:  # plots and clips
            made.unlink()
        for stale in out.glob(".report-tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise BadInput(out, f"cannot write the report here: {e.strerror or e}") from None
    return out
