"""`sao-harness compare --report`: verdict, provenance and policy first, the per-layer plot,
then the tensor table collapsed; the JSON names device, policy calibration and provenance."""

from __future__ import annotations

import json

from cli_util import run_cli


def test_compare_report_reading_order(tmp_path):
    res = run_cli("compare", "--case", "tiny-torch", "--report", tmp_path / "r", "--json")
    assert res.code == 0, res.err
    md = (tmp_path / "r/tiny-torch.md").read_text()
    assert md.startswith("## tiny-torch: PASS")
    assert md.index("Run: `sao-harness ") < md.index("![per-layer SNR") < md.index("<details>") \
        < md.index("| # | tensor")
    assert (tmp_path / "r/tiny-torch.png").read_bytes()[:4] == b"\x89PNG"
    case = json.loads((tmp_path / "r/tiny-torch.json").read_text())
    assert case["device"] == "cpu" and case["policy_calibrated"] is True
    assert case["provenance"]["host"]["cpu"] and case["provenance"]["commit"]
    assert json.loads(res.out)["provenance"]["device"] == "cpu"


def test_generate_json_names_the_run(tmp_path):
    res = run_cli("generate", "--prompt-ids", "5,1", "--out", tmp_path / "a.wav", "--json")
    assert res.code == 0, res.err
    prov = json.loads(res.out)["provenance"]
    assert prov["device"] == "cpu" and prov["harness_version"]
