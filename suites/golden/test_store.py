"""Golden store: committed goldens verify; any corruption is one line naming file and tensor.
Runs in the default env (no torch): goldens are recorded elsewhere, verified everywhere."""

from __future__ import annotations

import json
import shutil
import struct
from collections import OrderedDict

import numpy as np
import pytest

from harness.golden.store import (DEFAULT_ROOT, MANIFEST_FILE, TENSORS_FILE, build_manifest,
                                   case_dirs, check_golden, load_golden, write_golden)
from harness.errors import BadInput
from suites.cli_util import assert_one_line_error, run_cli


def small_case(root, case="demo"):
    rng = np.random.default_rng(1)
    tensors = OrderedDict([("input.noise", rng.standard_normal((2, 3, 4), dtype=np.float32)),
                           ("input.input_ids", np.arange(8, dtype=np.int64).reshape(2, 4)),
                           ("model.model", rng.standard_normal((2, 3, 4), dtype=np.float32)),
                           ("pretransform.model.decoder", rng.standard_normal((2, 2, 16),
                                                                              dtype=np.float32))])
    manifest = build_manifest(case, "torch", tensors, "torch-fp32", settings={"frames": 4})
    return write_golden(root, case, tensors, manifest), tensors


def flip_byte_of(path, tensor: str, at: int = 0) -> None:
    """Flip one byte inside `tensor`'s data region of a safetensors file."""
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    start, _ = json.loads(raw[8:8 + n])[tensor]["data_offsets"]
    raw[8 + n + start + at] ^= 0x01
    path.write_bytes(bytes(raw))


def test_committed_goldens_verify():
    dirs = case_dirs(DEFAULT_ROOT)
    assert dirs, f"no golden cases committed under {DEFAULT_ROOT}"
    res = run_cli("golden", "verify")
    assert res.code == 0, res.err
    assert len(res.out.splitlines()) == len(dirs)
    for d in dirs:
        g = check_golden(d, d.name)
        assert g.manifest["producer"] in ("torch", "litert", "arm-tflite")
        assert list(g.tensors) == g.manifest["order"]


def test_flipped_byte_in_committed_golden_names_the_tensor(tmp_path):
    src = case_dirs(DEFAULT_ROOT)[0]
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    name = "sampler.steps.3.x"
    flip_byte_of(dst / TENSORS_FILE, name, at=5)
    assert_one_line_error(run_cli("golden", "verify", "--golden-dir", dst), TENSORS_FILE,
                          f"tensor {name} sha256 mismatch")


def test_round_trip_and_order(tmp_path):
    path, tensors = small_case(tmp_path)
    g = load_golden("demo", tmp_path)
    assert list(g.tensors) == list(tensors) == g.manifest["order"]
    for k, v in tensors.items():
        assert g[k].dtype == v.dtype and np.array_equal(g[k], v)
    assert set(g.manifest["inputs"]) == {"input.noise", "input.input_ids"}
    assert g.manifest["tensors"]["model.model"]["group"] == "dit"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.parametrize("damage,needle", [
    ("flip", "tensor model.model sha256 mismatch"),
    ("manifest", "manifest.json: not valid JSON"),
    ("no-manifest", "manifest.json: missing"),
    ("no-tensors", "tensors.safetensors: missing"),
    ("truncate", "tensors.safetensors: tensor input.noise: data ends at byte"),
    ("shape", "tensor model.model is float32[2, 3, 4], manifest says float32[3, 2, 4]"),
    ("extra", "tensor model.model listed in the manifest is missing"),
])
def test_damage_is_one_line(tmp_path, damage, needle):
    path, _ = small_case(tmp_path)
    m = json.loads((path / MANIFEST_FILE).read_text())
    if damage == "flip":
        flip_byte_of(path / TENSORS_FILE, "model.model")
    elif damage == "manifest":
        (path / MANIFEST_FILE).write_text('{"format": ')
    elif damage == "no-manifest":
        (path / MANIFEST_FILE).unlink()
    elif damage == "no-tensors":
        (path / TENSORS_FILE).unlink()
    elif damage == "truncate":
        raw = (path / TENSORS_FILE).read_bytes()
        (path / TENSORS_FILE).write_bytes(raw[: len(raw) // 2])
    elif damage == "shape":
        m["tensors"]["model.model"]["shape"] = [3, 2, 4]
        (path / MANIFEST_FILE).write_text(json.dumps(m))
    elif damage == "extra":
        from safetensors.numpy import load_file, save_file
        t = load_file(str(path / TENSORS_FILE))
        del t["model.model"]
        save_file(t, str(path / TENSORS_FILE))
    with pytest.raises(BadInput) as err:
        check_golden(path)
    assert needle in str(err.value)
    if damage == "manifest":  # the CLI's one-line form (one subprocess is enough: it is slow)
        assert_one_line_error(run_cli("golden", "verify", "--golden-dir", path), needle)


def test_missing_dir_and_list(tmp_path):
    assert_one_line_error(run_cli("golden", "verify", "--golden-dir", tmp_path / "nope"), "nope",
                          "does not exist")
    small_case(tmp_path, "a")
    small_case(tmp_path, "b")
    res = run_cli("golden", "list", "--golden-dir", tmp_path, "--json")
    assert res.code == 0, res.err
    listed = json.loads(res.out)
    assert listed["passed"] is True and [r["case"] for r in listed["cases"]] == ["a", "b"]


def test_failed_write_leaves_nothing(tmp_path):
    small_case(tmp_path, "keep")
    bad = OrderedDict([("x", np.array([object()]))])  # not storable
    with pytest.raises(Exception):
        write_golden(tmp_path, "broken", bad, {"format": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
    with pytest.raises(BadInput, match="exists; pass --force"):
        small_case(tmp_path, "keep")
