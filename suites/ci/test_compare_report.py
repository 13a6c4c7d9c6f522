"""`sao-harness compare --report`: verdict, provenance and policy first, the per-layer plot,
then the tensor table collapsed; the JSON names device, policy calibration and provenance."""

from __future__ import annotations

import json

from harness.cli import main


def test_compare_report_reading_order(tmp_path, capsys):
    assert main(["compare", "--case", "tiny-torch", "--report", str(tmp_path / "r"),
                 "--json"]) == 0
    out = capsys.readouterr().out
    md = (tmp_path / "r/tiny-torch.md").read_text()
    assert md.startswith("## tiny-torch: PASS")
    assert md.index("Run: `sao-harness ") < md.index("![per-layer SNR") < md.index("<details>") \
        < md.index("| # | tensor")
    assert (tmp_path / "r/tiny-torch.png").read_bytes()[:4] == b"\x89PNG"
    case = json.loads((tmp_path / "r/tiny-torch.json").read_text())
    assert case["device"] == "cpu" and case["policy_calibrated"] is True
    assert case["provenance"]["host"]["cpu"] and case["provenance"]["commit"]
    assert json.loads(out)["provenance"]["device"] == "cpu"


def test_generate_json_names_the_run(tmp_path, capsys):
    assert main(["generate", "--prompt-ids", "5,1", "--out", str(tmp_path / "a.wav"),
                 "--json"]) == 0
    prov = json.loads(capsys.readouterr().out)["provenance"]
    assert prov["device"] == "cpu" and prov["harness_version"]
