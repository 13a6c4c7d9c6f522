"""Corrupted candidates are rejected, each with a reason naming the tensor and the fault.

The first group is structurally valid (same keys, shapes and dtypes): only the tensor diff
and the drift stage see them, so the reasons must name both the tensor and the stage.
"""

from __future__ import annotations

import json

import pytest

from suites.cli_util import run_cli
from suites.gate import gate_variants as gv


# maker(src, dst[, other]), tensor named, fault named, drift stage that must fail
VALID_SHAPES = {
    "transposed": (gv.transposed, gv.SQUARE, "transposed", "dit"),
    "qk-swapped": (gv.qk_swapped, gv.QKV, "q/k chunks swapped", "dit"),
    "weight-g-wrong-dim": (gv.weight_g_wrong_dim, f"{gv.CONVT}.weight_g",
                           "norm of weight_v per dim 1", "vae"),
    "scaled": (gv.scaled, gv.FF_OUT, "scaled by 1.25", "dit"),
    "foreign-tensor": (gv.foreign_tensor, gv.FOREIGN, "replaced by unrelated values", "dit"),
}


@pytest.mark.parametrize("name", list(VALID_SHAPES))
def test_structurally_valid_corruption_rejected(name, approved, seed1, gate, tmp_path):
    make, tensor, fault, stage = VALID_SHAPES[name]
    cand = (make(approved, tmp_path / name, seed1) if name == "foreign-tensor"
            else make(approved, tmp_path / name))
    r = gate(cand, approved, "same")
    assert r.verdict == "reject"
    assert r.stage("structure").status == "pass"  # invisible to the strict loader
    assert r.stage("load").status == "pass"
    weight_reasons = [x for x in r.reasons if x.startswith("weights: ")]
    assert any(tensor in x and fault in x for x in weight_reasons), r.reasons
    assert len(weight_reasons) <= 2, weight_reasons  # only the damaged tensor (g/v pair)
    drift_reasons = [x for x in r.reasons if x.startswith(f"drift: {stage}: ")]
    assert drift_reasons, r.reasons
    assert "dB <" in drift_reasons[0]


def test_corruption_found_inside_a_reencoding(approved, gate, tmp_path):
    """fp16 re-encode of the DiT plus swapped q/k: the rounding is allowed, the swap is not."""
    fp16 = gv.fp16_dit(approved, tmp_path / "fp16")
    cand = gv.qk_swapped(fp16, tmp_path / "fp16-qk")
    r = gate(cand, approved, "same")
    assert r.verdict == "reject"
    assert any(gv.QKV in x and "q/k chunks swapped" in x for x in r.reasons), r.reasons
    assert "tolerance class fp16" in r.stage("weights").summary
    assert any(x.startswith("drift: dit: ") for x in r.reasons), r.reasons


STRUCTURAL = {
    "nan": (gv.with_nan, [gv.NAN_KEY, "1 NaN"]),
    "fp16-overflow": (gv.fp16_overflow, [gv.FF_OUT, "+Inf", "F16 overflow"]),
    "missing-key": (gv.missing_key, ["missing tensor", gv.FF_OUT]),
    "extra-key": (gv.extra_key, ["unexpected tensor", "layers.9.ff.ff.2.weight"]),
    "truncated": (gv.truncated, ["truncated"]),
    "pickle-renamed": (gv.pickle_renamed, ["is a pickle", "refusing to unpickle"]),
    "trailing-bytes": (gv.trailing_bytes, ["64 trailing bytes after the last tensor"]),
    "broken-tokenizer": (gv.broken_tokenizer, ["t5/spiece.model", "not a SentencePiece model"]),
    "t5-missing-tensor": (gv.t5_missing_tensor, ["t5/model.safetensors", "missing tensor",
                                                 "encoder.final_layer_norm.weight"]),
}


@pytest.mark.parametrize("name", list(STRUCTURAL))
def test_structural_corruption_rejected(name, approved, gate, tmp_path):
    make, needles = STRUCTURAL[name]
    cand = make(approved, tmp_path / name)
    r = gate(cand, approved, "same")
    assert r.verdict == "reject"
    structure = r.stage("structure")
    assert structure.status == "fail"
    text = "\n".join(structure.reasons)
    assert str(cand) in text
    for n in needles:
        assert n in text, text
    assert r.stage("load").status == "skip"  # nothing downstream runs on a broken file


def test_other_checkpoint_rejected(approved, seed1, gate):
    r = gate(seed1, approved, "same")
    assert r.verdict == "reject"
    assert r.stage("weights").data["counts"]["changed"] > 100
    rows = r.stage("drift").rows  # (early sampler steps are mostly the shared noise)
    assert all(row["snr_db"] < 10 for row in rows if row["stage"] in ("conditioner", "dit", "vae"))


def test_cli_reject_json(approved, tmp_path, golden_dir):
    cand = gv.qk_swapped(approved, tmp_path / "qk")
    res = run_cli("gate", cand, "--baseline", approved, "--frames", "64", "--golden-dir",
                  golden_dir, "--json")
    assert res.code == 1, res.err + res.out
    out = json.loads(res.out)
    assert out["verdict"] == "reject"
    assert any(gv.QKV in r for r in out["reasons"])
    assert {s["name"]: s["status"] for s in out["stages"]}["drift"] == "fail"
