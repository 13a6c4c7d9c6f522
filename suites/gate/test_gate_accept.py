"""Re-encodings of the approved checkpoint are accepted with --expect same."""

from __future__ import annotations

import json
import math

import pytest

from harness.compare.weightdiff import CHANGED
from suites.cli_util import run_cli
from suites.gate import gate_variants as gv

# maker, tolerance class the gate must infer, a tensor the re-encoding touched
REENCODINGS = {
    "fp16-dit": (gv.fp16_dit, "fp16", gv.QKV),
    "bf16-dit": (gv.bf16_dit, "bf16", gv.QKV),
    "fp32-vae": (gv.fp32_vae, "fp32", None),              # fp16 -> fp32 is exact
    "fp16-conditioner-and-t5": (gv.fp16_conditioning, "fp16", None),
    "fp32-vae-original": (gv.vae_fp32_original, "fp16", None),  # approved = its fp16 rounding
    "weight-norm-reparameterized": (gv.reparam_vae, "fp16", None),
    "reversed-key-order": (gv.reversed_keys, "fp32", None),
}


@pytest.mark.parametrize("name", list(REENCODINGS))
def test_reencoding_accepted(name, approved, gate, tmp_path):
    make, rounding, touched = REENCODINGS[name]
    cand = make(approved, tmp_path / name)
    r = gate(cand, approved, "same")
    assert r.verdict == "accept", r.reasons
    weights = r.stage("weights")
    assert weights.status == "pass" and weights.data["counts"][CHANGED] == 0
    assert f"tolerance class {rounding}" in weights.summary
    if touched:
        row = next(x for x in weights.rows if x["name"] == touched)
        assert row["kind"] == "rounded"
    drift = r.stage("drift")
    assert drift.status == "pass" and drift.rows
    assert all(row["passed"] for row in drift.rows)
    if rounding == "fp32":  # no tensor changed beyond fp32: the outputs are bit-equal
        assert all(row["snr_db"] == "inf" for row in drift.rows)
    else:
        assert any(row["snr_db"] != "inf" for row in drift.rows)  # the rounding is visible


def test_reversed_keys_really_reorder(approved, tmp_path):
    cand = gv.reversed_keys(approved, tmp_path / "rev")
    before = gv.header_order(approved / "model.safetensors")
    after = gv.header_order(cand / "model.safetensors")
    assert after == before[::-1] and after != before
    assert (cand / "model.safetensors").read_bytes() != (approved / "model.safetensors").read_bytes()


def test_fp32_candidate_of_fp16_approved_accepted(approved, gate, tmp_path):
    """The other direction: the approved file is the fp16 re-encode, the candidate the fp32
    original; the approved tensors are the candidate's rounding."""
    fp16 = gv.fp16_dit(approved, tmp_path / "fp16")
    r = gate(approved, fp16, "same")
    assert r.verdict == "accept", r.reasons
    assert "tolerance class fp16" in r.stage("weights").summary


def test_bare_weight_file_borrows_the_approved_config(approved, gate, tmp_path):
    cand = gv.bare_weight_file(approved, tmp_path / "bare")
    r = gate(cand, approved, "same")
    assert r.verdict == "accept", r.reasons
    assert any("using the approved checkpoint's config and T5" in row["value"]
               for row in r.stage("structure").rows)


def test_identical_copy_runs_parity_with_goldens(approved, gate, tmp_path, golden_dir):
    """The seeded tiny checkpoint has committed goldens: parity runs and passes."""
    cand = gv.copy(approved, tmp_path / "copy").parent
    r = gate(cand, approved, "same")
    assert r.verdict == "accept", r.reasons
    parity = r.stage("parity")
    assert parity.status == "pass", parity.summary
    assert {row["case"] for row in parity.rows} >= {"tiny-torch"}
    assert all(row["passed"] for row in parity.rows)


def test_cli_accept_json(approved, tmp_path, golden_dir):
    cand = gv.fp16_dit(approved, tmp_path / "fp16")
    res = run_cli("gate", cand, "--baseline", approved, "--expect", "same", "--frames", "64",
                  "--golden-dir", golden_dir, "--json")
    assert res.code == 0, res.err + res.out
    out = json.loads(res.out)
    assert out["verdict"] == "accept" and out["reasons"] == []
    assert [s["name"] for s in out["stages"]] == ["structure", "weights", "baseline", "load",
                                                  "parity", "drift", "audio"]
    drift = next(s for s in out["stages"] if s["name"] == "drift")
    snrs = [row["snr_db"] for row in drift["rows"]]
    assert all(isinstance(v, str) or math.isfinite(v) for v in snrs)  # strict JSON
