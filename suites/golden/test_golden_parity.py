"""The bundled MLX model matches every stored golden case within its tolerance policy.

Cases come from --golden-dir (default: the committed golden/). Tiny cases run on --weights
(default: the seeded tiny checkpoint, whose sha256 the manifests record); `full-*` cases on the
seeded full checkpoint, under the `full` marker. A golden recorded for other weights, a bad
manifest or a shape/dtype mismatch fails the test with a one-line error; nothing is skipped
silently, except a golden of other weights than the user's --weights: that test skips,
naming why (suites/model/test_weights_under_test.py checks such weights without goldens). The bad-input half tampers with copies of a committed golden in tmp_path.
"""

from __future__ import annotations

import json
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from harness.compare.divergence import OtherWeights, compare_case
from harness.compare.report import to_json, to_markdown
from harness.golden.store import (DEFAULT_ROOT, MANIFEST_FILE, build_manifest, case_dirs,
                                   check_golden, write_golden)
from harness.errors import BadInput
from harness.progress import without_progress

SMALL_CASE = "tiny-torch-cfg"  # one of the small tiny cases: cheap to copy and tamper with


def _golden_root(config) -> Path:
    # the same default as conftest's golden_dir fixture (parametrizing needs it at collection)
    return config.getoption("--golden-dir") or DEFAULT_ROOT


def pytest_generate_tests(metafunc):
    if "golden_case" not in metafunc.fixturenames:
        return
    root = _golden_root(metafunc.config)
    names = [d.name for d in case_dirs(root)] if root.is_dir() else []
    full = metafunc.function.__name__.endswith("_full")
    mark = [pytest.mark.full] if full else []
    chosen = [n for n in names if n.startswith("full-") == full]
    # No case of this kind still yields one test (None): it fails for a missing or empty
    # store and skips, saying what is missing, when only the other kind is stored.
    metafunc.parametrize("golden_case", [pytest.param(n, id=n, marks=mark) for n in chosen]
                         or [pytest.param(None, id="none", marks=mark)])


@pytest.fixture(scope="module")
def models():
    """Loaded models by checkpoint path: each checkpoint is loaded once per module."""
    from harness.weights.load import load_model

    cache = {}

    def get(path):
        if path not in cache:
            cache[path] = load_model(path)
        return cache[path]

    return get


def _check(case_dir: Path, weights: Path, models, report_dir: Path, given: bool = False):
    """given: the weights are the user's --weights, which need not have goldens."""
    model, ckpt = models(weights)
    try:
        result = compare_case(case_dir, model, ckpt)
    except OtherWeights as e:
        if not given:  # the committed goldens were recorded from the seeded checkpoints
            raise
        pytest.skip(f"no golden for --weights: {e} (record one with `sao-harness golden "
                    "record`; suites/model/test_weights_under_test.py checks them without)")
    (report_dir / f"golden-{result.case}.md").write_text(to_markdown(result))
    (report_dir / f"golden-{result.case}.json").write_text(json.dumps(to_json(result)))
    assert result.passed, f"{result.case}: {result.verdict()}"
    order = json.loads((case_dir / MANIFEST_FILE).read_text())["order"]
    assert [r.name for r in result.rows] == [n for n in order if not n.startswith("input.")]


def test_golden_parity(golden_case, golden_dir, weights_path, models, report_dir, request):
    if golden_case is None:
        stored = case_dirs(golden_dir)  # a missing store fails here, naming it
        if not stored:
            pytest.fail(f"no golden case under {golden_dir}")
        pytest.skip(f"missing: no golden case other than full-* under {golden_dir} "
                    f"({len(stored)} full-size)")
    case_dir = golden_dir / golden_case
    given = request.config.getoption("--weights") is not None
    if not given and _preset(case_dir) == "tiny-trained":
        from harness.weights.trained import trained_checkpoint

        weights_path = trained_checkpoint()  # the committed trained weights it was recorded from
    _check(case_dir, weights_path, models, report_dir, given=given)


def _preset(case_dir: Path) -> str | None:
    weights = json.loads((case_dir / MANIFEST_FILE).read_text()).get("weights")
    return weights.get("preset") if isinstance(weights, dict) else None


def test_golden_parity_full(golden_case, golden_dir, request, models, report_dir):
    if golden_case is None:
        case_dirs(golden_dir)
        pytest.skip(f"missing: no full-* golden case under {golden_dir} (record one with "
                    "`sao-harness golden record --synth full:0 --case full-torch ...`)")
    _check(golden_dir / golden_case, request.getfixturevalue("full_checkpoint"), models,
           report_dir)


# -- bad input: every one is a one-line error (exit 2) and fails the comparison --------------

@pytest.fixture
def small_copy(tmp_path) -> Path:
    src = DEFAULT_ROOT / SMALL_CASE
    dst = tmp_path / "store" / SMALL_CASE
    shutil.copytree(src, dst)
    return dst


def rewrite(case_dir: Path, edit) -> Path:
    """Re-write a case through the store with `edit(tensors)` applied: hashes stay valid, so
    only the comparison can object."""
    g = check_golden(case_dir, case_dir.name)
    tensors = OrderedDict((k, v.copy()) for k, v in g.tensors.items())
    edit(tensors)
    m = g.manifest
    extra = {k: v for k, v in m.items() if k not in ("format", "case", "producer",
                                                      "tolerance_class", "order", "tensors",
                                                      "inputs")}
    manifest = build_manifest(m["case"], m["producer"], tensors, m["tolerance_class"], **extra)
    return write_golden(case_dir.parent, m["case"], tensors, manifest, overwrite=True)


def edit_manifest(case_dir: Path, edit) -> None:
    path = case_dir / MANIFEST_FILE
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))


def compare_cli(capsys, *args):
    from harness.cli import main

    code = main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad_input(capsys, args, *needles):
    code, _, err = compare_cli(capsys, *args)
    lines = without_progress(err)
    assert code == 2, f"exit {code}: {err!r}"
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def assert_fails_comparison(case_dir, weights, models, *needles):
    """The parity test's own path raises (so that test fails, it never skips)."""
    with pytest.raises(BadInput) as e:
        _check(case_dir, weights, models, case_dir.parent)
    for n in needles:
        assert n in str(e.value)


def test_missing_golden_dir(tmp_path, capsys, tiny_checkpoint):
    missing = tmp_path / "nowhere"
    assert_bad_input(capsys, ["--golden-dir", missing, "--weights", tiny_checkpoint],
                     str(missing), "does not exist")
    assert_bad_input(capsys, ["--golden-dir", tmp_path, "--case", "nope", "--weights",
                              tiny_checkpoint], "nope", "does not exist")
    with pytest.raises(BadInput, match="does not exist"):
        case_dirs(missing)  # what test_golden_parity calls first


def test_unparsable_manifest(small_copy, capsys, tiny_checkpoint, models):
    (small_copy / MANIFEST_FILE).write_text('{"format": "sao-harness-golden/1", ')
    assert_bad_input(capsys, ["--golden-dir", small_copy.parent, "--weights", tiny_checkpoint],
                     MANIFEST_FILE, "not valid JSON")
    assert_fails_comparison(small_copy, tiny_checkpoint, models, "not valid JSON")


def test_golden_for_other_weights(small_copy, capsys, tiny_checkpoint, models, tmp_path):
    from harness.weights.synth import write_checkpoint

    other = write_checkpoint("tiny", 1, tmp_path / "tiny-seed1")
    store = small_copy.parent
    line = assert_bad_input(capsys, ["--golden-dir", store, "--case", SMALL_CASE,
                                     "--weights", other],
                            MANIFEST_FILE, "recorded for other weights", "model.safetensors sha256")
    assert str(other) in line
    assert_fails_comparison(small_copy, other, models, "recorded for other weights")
    # without --case: nothing in the store was recorded from these weights
    assert_bad_input(capsys, ["--golden-dir", store, "--weights", other],
                     str(store), "no golden case was recorded from", str(other))

    edit_manifest(small_copy, lambda m: m["weights"]["sha256"].update(
        {"t5/model.safetensors": "0" * 64}))
    assert_bad_input(capsys, ["--golden-dir", store, "--case", SMALL_CASE,
                              "--weights", tiny_checkpoint],
                     "recorded for other weights", "t5/model.safetensors")


def test_store_with_other_weights_lists_them(small_copy, capsys, tiny_checkpoint):
    """A store holds tiny and full cases: without --case, the ones recorded for other weights
    are named as not compared (never compared against the wrong weights, never hidden)."""
    other = small_copy.parent / "tiny-torch-cfg-other"
    shutil.copytree(small_copy, other)
    def recorded_elsewhere(m):
        m["case"] = other.name
        m["weights"]["sha256"]["model.safetensors"] = "f" * 64

    edit_manifest(other, recorded_elsewhere)
    code, out, _ = compare_cli(capsys, "--golden-dir", small_copy.parent,
                               "--weights", tiny_checkpoint)
    assert code == 0, out
    assert f"{SMALL_CASE}: PASS" in out
    assert f"{other.name}: not compared, recorded for other weights" in out


def test_golden_without_weights_hash(small_copy, capsys, tiny_checkpoint):
    """An Arm TFLite golden hashes the .tflite files, not model.safetensors: refused unless
    asked for explicitly, and then the report says the weights were not verified."""
    edit_manifest(small_copy, lambda m: m["weights"]["sha256"].pop("model.safetensors"))
    args = ["--golden-dir", small_copy.parent, "--case", SMALL_CASE, "--weights", tiny_checkpoint]
    assert_bad_input(capsys, args, "records no weights sha256", "--unverified-weights")
    code, out, _ = compare_cli(capsys, *args, "--unverified-weights", "--json")
    assert code == 0
    assert "weights NOT verified" in json.loads(out)["cases"][0]["notes"][0]


def test_shape_mismatch(small_copy, capsys, tiny_checkpoint, models):
    def drop_last_sample(t):
        t["pretransform.model.decoder"] = t["pretransform.model.decoder"][..., :-1].copy()

    rewrite(small_copy, drop_last_sample)
    assert_bad_input(capsys, ["--golden-dir", small_copy.parent, "--weights", tiny_checkpoint],
                     "pretransform.model.decoder", "[3, 2, 2047]", "[3, 2, 2048]")
    assert_fails_comparison(small_copy, tiny_checkpoint, models, "pretransform.model.decoder")


def test_dtype_mismatch(small_copy, capsys, tiny_checkpoint, models):
    def as_int(t):
        t["conditioner.global_cond"] = t["conditioner.global_cond"].astype(np.int32)

    rewrite(small_copy, as_int)
    assert_bad_input(capsys, ["--golden-dir", small_copy.parent, "--weights", tiny_checkpoint],
                     "conditioner.global_cond", "int32")
    assert_fails_comparison(small_copy, tiny_checkpoint, models, "int32")


def test_tensor_the_model_does_not_record(small_copy, capsys, tiny_checkpoint):
    def add(t):
        t["model.model.transformer.layers.0.no_such_module"] = np.zeros((3, 4), np.float32)

    rewrite(small_copy, add)
    assert_bad_input(capsys, ["--golden-dir", small_copy.parent, "--weights", tiny_checkpoint],
                     "model.model.transformer.layers.0.no_such_module", "no counterpart")


def test_nan_in_golden(small_copy, capsys, tiny_checkpoint):
    def poison(t):
        t["sampler.steps.3.v"][0, 0, 0] = np.nan

    rewrite(small_copy, poison)
    assert_bad_input(capsys, ["--golden-dir", small_copy.parent, "--weights", tiny_checkpoint],
                     "sampler.steps.3.v", "NaN")


def test_cli_pass_json_and_report(capsys, tiny_checkpoint, tmp_path):
    code, out, _ = compare_cli(capsys, "--case", SMALL_CASE, "--weights", tiny_checkpoint,
                               "--json", "--report", tmp_path / "rep")
    data = json.loads(out)
    assert code == 0 and data["passed"]
    case = data["cases"][0]
    assert case["case"] == SMALL_CASE and case["first_divergence"] is None
    order = json.loads((DEFAULT_ROOT / SMALL_CASE / MANIFEST_FILE).read_text())["order"]
    n = len([name for name in order if not name.startswith("input.")])
    assert len(case["tensors"]) == n
    assert all(t["passed"] and t["replay_passed"] for t in case["tensors"])
    md = (tmp_path / "rep" / f"{SMALL_CASE}.md").read_text()
    assert f"all {n} tensors within tolerance" in md and md.count("\n| ") == n + 1
