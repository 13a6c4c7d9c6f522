"""The report: report.md (the CI job summary), report.html with its plots, junit.xml.

One rich report is made: swapped q/k chunks judged as an update against goldens that
say what the candidate should compute (the committed tiny-torch case, relabelled with the
candidate's sha256), so every section is present: a first divergence, per-layer plots,
drift, audio checks with spectrograms.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from harness.cli import main
from harness.weights.load import sha256_file
from suites.gate import gate_variants as gv

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(approved, golden_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    cand = gv.qk_swapped(approved, tmp / "qk")
    goldens = tmp / "goldens"
    shutil.copytree(golden_dir / "tiny-torch", goldens / "tiny-torch")
    manifest = json.loads((goldens / "tiny-torch" / "manifest.json").read_text())
    manifest["weights"]["sha256"]["model.safetensors"] = sha256_file(cand / "model.safetensors")
    (goldens / "tiny-torch" / "manifest.json").write_text(json.dumps(manifest))
    out = tmp / "out"
    code = main(["gate", str(cand), "--baseline", str(approved), "--expect", "update",
                 "--golden-dir", str(goldens), "--frames", "512", "--report", str(out)])
    return code, out


def test_report_files_and_verdict(report):
    code, out = report
    assert code == 1
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"] == "reject"
    assert any(r.startswith("parity: golden tiny-torch: first divergence: "
                            "model.model.transformer.layers.0.self_attn") for r in result["reasons"])
    for name in ("report.md", "report.html", "junit.xml", "per_layer_parity.png",
                 "per_layer_drift.png", "spectrograms.png"):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000


def test_markdown_sections_and_tables(report):
    _, out = report
    md = (out / "report.md").read_text()
    for heading in ("# Weight gate: REJECT", "## Reasons", "## Stages", "## Structure",
                    "## Weights vs the approved checkpoint", "## Parity with the reference's goldens",
                    "### First divergence: tiny-torch", "## Drift vs the approved checkpoint",
                    "## Audio checks on generated audio"):
        assert f"\n{heading}" in "\n" + md, heading
    assert "**>** model.model.transformer.layers.0.self_attn" in md  # the first divergence row
    # Every table row has as many cells as its header (escaped pipes do not split cells).
    for block in re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M):
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in block.splitlines()}
        assert len(widths) == 1, block[:300]
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / image).is_file(), image
    assert len(md.encode()) < 1024 * 1024  # GitHub's job-summary limit per step


def test_markdown_renders_as_job_summary(report):
    """GitHub renders the summary as GFM: every table, heading and image must survive."""
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py not installed")
    _, out = report
    md = (out / "report.md").read_text()
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    n_tables = len(re.findall(r"^\|---", md, flags=re.M))
    assert html.count("<table>") == n_tables > 4
    assert html.count("<img ") == len(re.findall(r"!\[", md)) == 3
    assert html.count("<h2>") == md.count("\n## ")
    assert "<code>" in html  # the sha256 and paths


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables = [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self.tables += tag == "table"


def test_html_is_self_contained(report):
    _, out = report
    p = _Collect()
    p.feed((out / "report.html").read_text())
    assert p.tables > 4
    assert len(p.images) == 3
    for src in p.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG


def test_junit_xml(report):
    _, out = report
    suite = ET.parse(out / "junit.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"structure", "weights", "baseline", "load", "parity", "drift", "audio",
                          "verdict"}
    assert cases["parity"].find("failure") is not None
    assert cases["verdict"].find("failure") is not None
    assert cases["structure"].find("failure") is None
    assert int(suite.get("failures")) >= 2 and int(suite.get("tests")) == 8


def test_html_opens_in_chromium(report, tmp_path):
    """Headless Chromium loads the report with its plots (a screenshot that is not blank)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("missing: chromium (apt-get install chromium) to render report.html")
    _, out = report
    shot = tmp_path / "shot.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--screenshot={shot}", "--window-size=1280,4000", (out / "report.html").as_uri()]
    # Without the OpenBLAS preload the suite may run under: Chromium's GPU process dies of it.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "OPENBLAS_CORETYPE")}
    for _ in range(3):  # on a loaded machine Chromium's zygote can miss its start-up ping
        proc = subprocess.run(cmd, capture_output=True, timeout=120, env=env)
        if shot.is_file():
            break
    assert shot.is_file(), proc.stderr.decode()[-2000:]
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[0] >= 4000 and pixels.shape[1] >= 1280
    # The plots make the page far from blank: many distinct colours in its lower part.
    lower = (pixels[1500:, :, :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(lower[:: 7], axis=0)) > 500


# -- the reading order, the job summary, the players, provenance (issue 18) -------------------
def test_verdict_and_plots_come_before_the_tables(report):
    _, out = report
    md = (out / "report.md").read_text()
    first_table = md.index("\n|")
    assert md.startswith("# Weight gate: REJECT")
    assert md.index("\nRun: `sao-harness ") < md.index("\n## Reasons") < md.index("\n## Plots")
    assert md.index("\n## Plots") < md.index("![") < first_table
    assert md.index("Clips (WAV") < first_table
    # a long table is collapsed, with its Markdown inside <details> (blank line after summary)
    assert re.search(r"<details><summary>\d+ rows: [^<]*</summary>\n\n\|", md)


def test_job_summary_inlines_the_plots_within_githubs_limit(report):
    _, out = report
    summary = (out / "summary.md").read_text()
    uris = re.findall(r"!\[[^\]]*\]\((data:image/png;base64,[^)]+)\)", summary)
    assert len(uris) == 3 and len(summary.encode()) < 1024 * 1024
    for u in uris:
        assert base64.b64decode(u.split(",", 1)[1])[:8] == PNG
    # the same document otherwise
    strip = lambda t: re.sub(r"!\[([^\]]*)\]\([^)]+\)", r"![\1]", t)
    assert strip(summary) == strip((out / "report.md").read_text())


def test_html_has_players_for_approved_and_candidate_clips(report):
    _, out = report
    page = (out / "report.html").read_text()
    players = re.findall(r"<figcaption>([^<]+)</figcaption><audio controls[^>]* src='([^']+)'", page)
    labels = {label for label, _ in players}
    assert {"candidate, clip 0", "approved, clip 0", "candidate, clip 1", "approved, clip 1"} <= labels
    for _, src in players:
        assert src.startswith("data:audio/wav;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"RIFF"
    for name in ("candidate-0.wav", "approved-1.wav"):
        assert (out / name).read_bytes()[:4] == b"RIFF"
    assert "<details>" in page


def test_provenance_in_json_and_report(report):
    _, out = report
    prov = json.loads((out / "result.json").read_text())["provenance"]
    assert prov["harness_version"] and prov["commit"] and prov["device"] == "cpu"
    assert prov["host"]["cpu"] and prov["host"]["platform"]
    assert prov["host"]["cpu"] in (out / "report.md").read_text()


def test_information_only_rows_are_not_red():
    from harness.gate import report as rep
    from harness.gate.result import INFO, Stage

    row = {"clip": 0, "prompt": "p", "name": "flicker_db", "value": 9.0,
           "threshold": {"max": 6.0}, "passed": False}
    info = Stage("audio", INFO, required=False, rows=[row])
    judged = Stage("audio", "fail", required=True, rows=[row])
    cell = lambda st: next(b for b in rep._audio(st, {}) if isinstance(b, rep.Table)).rows[0][-1]
    assert cell(judged) == "FAIL" and cell(info) == rep.INFO_OUTSIDE
    page = rep.to_html(rep._audio(info, {}), {}, "t")
    assert "class='FAIL'" not in page


def test_drift_plot_tolerance_per_module():
    from harness.gate.drift import stage_of

    assert [stage_of(n) for n in (
        "conditioner.cross_attn_cond", "model.model.transformer.layers.0.self_attn",
        "sampler.steps.3.x", "pretransform.model.decoder.layers.1", "audio")] == [
        "conditioner", "dit", "trajectory", "vae", "audio"]
