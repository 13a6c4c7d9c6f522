"""Malformed golden manifests: `golden verify` exits 2 with one line naming manifest.json and
the field; the gate given such a golden rejects (a golden that cannot be read may belong to any
checkpoint)."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suites.robustness.contract import bad_input, cli


def _first_tensor(m):
    return next(iter(m["tensors"]))


MANIFESTS = {  # edit of the parsed manifest, or raw bytes -> words the line must hold
    "tensors-list": (lambda m: {**m, "tensors": list(m["tensors"])}, "field tensors must be"),
    "tensors-null": (lambda m: {**m, "tensors": None}, "field tensors must be"),
    "shape-as-strings": (lambda m: (m["tensors"][_first_tensor(m)].update(
        shape=[str(d) for d in m["tensors"][_first_tensor(m)]["shape"]]), m)[1],
        "shape of non-negative integers"),
    "shape-negative": (lambda m: (m["tensors"][_first_tensor(m)].update(shape=[-1]), m)[1],
                       "shape of non-negative integers"),
    "sha256-int": (lambda m: (m["tensors"][_first_tensor(m)].update(sha256=7), m)[1],
                   "dtype and sha256 strings"),
    "dtype-missing": (lambda m: (m["tensors"][_first_tensor(m)].pop("dtype"), m)[1],
                      "dtype and sha256 strings"),
    "entry-string": (lambda m: {**m, "tensors": {k: "x" for k in m["tensors"]}},
                     "dtype and sha256 strings"),
    "order-string": (lambda m: {**m, "order": "all"}, "field order must be"),
    "order-ints": (lambda m: {**m, "order": [1, 2]}, "field order must be"),
    "order-mismatch": (lambda m: {**m, "order": m["order"][::-1]}, "order does not list"),
    "inputs-list": (lambda m: {**m, "inputs": []}, "field inputs must be"),
    "inputs-int-hash": (lambda m: {**m, "inputs": {"input.x": 1}}, "field inputs must be"),
    "format-int": (lambda m: {**m, "format": 1}, "field format must be a string"),
    "format-other": (lambda m: {**m, "format": "other/9"}, "format 'other/9'"),
    "producer-unknown": (lambda m: {**m, "producer": "me"}, "unknown producer"),
    "case-null": (lambda m: {**m, "case": None}, "field case must be a string"),
    "weights-sha-string": (lambda m: {**m, "weights": {"sha256": "abc"}}, "field weights"),
    "missing-tensors": (lambda m: {k: v for k, v in m.items() if k != "tensors"},
                        "lacks field 'tensors'"),
    "top-level-list": (b"[]", "is not a JSON object"),
    "deep-nesting": (b'{"format": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply"),
    "invalid-json": (b"{ not json", "not valid JSON"),
    "not-utf8": (b'{"format": "\xff"}', "not valid JSON"),
    "empty": (b"", "not valid JSON"),
}


def _case(golden_dir, root, edit):
    case = root / "tiny-torch"
    shutil.copytree(golden_dir / "tiny-torch", case)
    path = case / "manifest.json"
    if isinstance(edit, bytes):
        path.write_bytes(edit)
    else:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return case


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_golden_verify(name, golden_dir, tmp_path):
    edit, needle = MANIFESTS[name]
    case = _case(golden_dir, tmp_path, edit)
    bad_input(cli("golden", "verify", "--golden-dir", tmp_path), case / "manifest.json", needle)


@pytest.mark.parametrize("name", ["shape-as-strings", "deep-nesting", "tensors-list"])
def test_gate_rejects_with_a_malformed_golden(name, golden_dir, tmp_path, tiny_checkpoint):
    from suites.robustness.contract import rejected

    edit, needle = MANIFESTS[name]
    _case(golden_dir, tmp_path / "goldens", edit)
    rejected(cli("gate", tiny_checkpoint, "--expect", "update", "--golden-dir",
                 tmp_path / "goldens", "--frames", "64", "--json"), "manifest.json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["format", "case", "producer", "tolerance_class", "order",
                              "tensors", "inputs", "weights"]), value=json_values)
def test_any_manifest_field_value_is_read_or_refused(field, value, golden_dir, tmp_path_factory):
    """Any JSON value in any field: a verified golden or one BadInput line, nothing else."""
    from harness.golden.store import check_golden
    from harness.errors import BadInput

    root = tmp_path_factory.mktemp("m")
    case = _case(golden_dir, root, lambda m: {**m, field: value})
    try:
        check_golden(case)
    except BadInput as e:
        assert "\n" not in str(e)
