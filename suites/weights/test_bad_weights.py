"""Every malformed weight input: exit 2, one line naming the file (and tensor) and the fault."""

from __future__ import annotations

import pickle
import shutil
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from harness.errors import BadInput
from harness.weights.load import load_official, open_checkpoint
from harness.weights.safetensors_io import read_safetensors
from suites.cli_util import assert_one_line_error, run_cli

DIT_KEY = "model.model.transformer.project_in.weight"  # (embed, io): not square in tiny


@pytest.fixture
def ckpt(tiny_checkpoint, tmp_path):
    """A private copy of the tiny checkpoint to damage."""
    dst = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, dst)
    return dst


def rewrite(ckpt, edit):
    path = ckpt / "model.safetensors"
    tensors = read_safetensors(path)
    edit(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


def inspect_fails(ckpt, *needles):
    return assert_one_line_error(run_cli("inspect", ckpt), *needles)


def test_truncated_file(ckpt):
    path = ckpt / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    inspect_fails(ckpt, str(path), "truncated")


def test_header_length_beyond_file(ckpt):
    path = ckpt / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 10**9) + b"{}")
    inspect_fails(ckpt, str(path), "runs past the end of the file")


def test_header_not_json(ckpt):
    path = ckpt / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 4) + b"nope")
    inspect_fails(ckpt, str(path), "not valid JSON")


def test_ckpt_pickle_refused(ckpt):
    path = ckpt / "model.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": {}}))
    inspect_fails(path, str(path), "pickle")


def test_pickle_renamed_safetensors(ckpt):
    path = ckpt / "model.safetensors"
    path.write_bytes(pickle.dumps({"state_dict": {"a": 1}}, protocol=4))
    inspect_fails(ckpt, str(path), "is a pickle")


def test_torch_zip_renamed_safetensors(ckpt):
    path = ckpt / "model.safetensors"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 64)  # torch.save's zip container
    inspect_fails(ckpt, str(path), "zip archive")


def test_wrong_dtype(ckpt):
    path = rewrite(ckpt, lambda t: t.update({DIT_KEY: t[DIT_KEY].astype(np.int32)}))
    inspect_fails(ckpt, str(path), DIT_KEY, "dtype I32")


def test_wrong_shape(ckpt):
    path = rewrite(ckpt, lambda t: t.update({DIT_KEY: np.ascontiguousarray(t[DIT_KEY].T)}))
    inspect_fails(ckpt, str(path), DIT_KEY, "has shape")


def test_missing_key(ckpt):
    path = rewrite(ckpt, lambda t: t.pop(DIT_KEY))
    inspect_fails(ckpt, str(path), f"missing tensor {DIT_KEY}")


def test_extra_key(ckpt):
    path = rewrite(ckpt, lambda t: t.update({"model.model.extra.weight": np.ones(3, np.float32)}))
    inspect_fails(ckpt, str(path), "unexpected tensor model.model.extra.weight")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite(ckpt, value):
    def poison(t):
        t[DIT_KEY] = t[DIT_KEY].copy()
        t[DIT_KEY][0, 0] = value
    path = rewrite(ckpt, poison)
    inspect_fails(ckpt, str(path), DIT_KEY, "NaN/Inf")


def test_t5_missing_key(ckpt):
    path = ckpt / "t5" / "model.safetensors"
    t = read_safetensors(path)
    t.pop("encoder.final_layer_norm.weight")
    save_file(t, str(path))
    inspect_fails(ckpt, str(path), "missing tensor encoder.final_layer_norm.weight")


def test_bad_model_config(ckpt):
    (ckpt / "model_config.json").write_text("{not json")
    inspect_fails(ckpt, "model_config.json", "not valid JSON")


def test_unreadable_paths(tmp_path):
    inspect_fails(tmp_path / "nowhere", "nowhere", "no such file or directory")
    (tmp_path / "empty").mkdir()
    inspect_fails(tmp_path / "empty", "no model.safetensors")


def test_problems_are_all_reported(ckpt):
    """Several faults at once: one line that counts and names them all."""
    def edit(t):
        t.pop(DIT_KEY)
        t["model.model.bogus"] = np.zeros(2, np.float32)
    rewrite(ckpt, edit)
    with pytest.raises(BadInput, match=r"2 problem\(s\): missing tensor .*unexpected tensor"):
        load_official(open_checkpoint(ckpt))


def test_generate_bad_weights_writes_nothing(ckpt, tmp_path):
    (ckpt / "model.safetensors").write_bytes(b"\0" * 4)
    out = tmp_path / "x.wav"
    assert_one_line_error(run_cli("generate", "--weights", ckpt, "--out", out), "truncated")
    assert not out.exists()


def test_generate_unwritable_out(tiny_checkpoint, tmp_path):
    for out in (tmp_path / "missing-dir" / "x.wav", tmp_path):
        res = run_cli("generate", "--weights", tiny_checkpoint, "--out", out)
        assert_one_line_error(res, str(out), "cannot write")
    assert list(tmp_path.iterdir()) == []


def test_synth_refuses_non_empty_out(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    assert_one_line_error(run_cli("synth", "--config", "tiny", "--out", tmp_path),
                          str(tmp_path), "not empty")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
