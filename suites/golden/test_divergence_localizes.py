"""The localiser on one mutant per model area (harness/mutants/catalogue: dit, conditioning,
vae): each fails the golden comparison, and the first divergence names the module the bug lives in,
on the reference's own input (`local`), with everything upstream agreeing; the unmutated model
passes, before and after every catalogued mutant was applied and removed. The whole catalogue
(structural and WAV-writer mutants included) is suites/mutants.

Runs on the committed tiny-torch golden (every intermediate) and the seeded tiny checkpoint
whatever --weights says: this checks the localiser, not the user's model.
"""

from __future__ import annotations

import pytest

from harness.compare.divergence import compare_golden
from harness.golden.store import DEFAULT_ROOT, load_golden
from harness.mutants import CATALOGUE, get

CASE = "tiny-torch"


@pytest.fixture(scope="module")
def setup(tiny_checkpoint):
    from harness.weights.load import load_model

    if not (DEFAULT_ROOT / CASE).is_dir():
        pytest.fail(f"missing: committed golden {DEFAULT_ROOT / CASE} (all intermediates)")
    model, ckpt = load_model(tiny_checkpoint)
    return model, ckpt, load_golden(CASE, DEFAULT_ROOT)


def test_unmutated_model_passes(setup):
    model, _, golden = setup
    result = compare_golden(model, golden)
    assert result.passed, result.verdict()
    assert all(r.local_passed for r in result.rows)


LOCAL = [get("rope-interleaved"), get("t5-padding-not-zeroed"), get("convt-weight-norm-wrong-dim")]


@pytest.mark.parametrize("mutant", LOCAL, ids=[m.name for m in LOCAL])
def test_mutant_is_localized(mutant, setup):
    model, ckpt, golden = setup
    with mutant.apply(model, ckpt):
        result = compare_golden(model, golden)
    verdict = result.verdict()
    assert not result.passed, f"{mutant.name} went undetected: {verdict}"
    assert result.first.name == mutant.expected_module, verdict
    assert not result.first.local_passed, f"{mutant.name} reported as inherited: {verdict}"
    assert verdict.startswith(f"first divergence: {mutant.expected_module} (SNR ")
    assert verdict.endswith(", local")
    # everything upstream of the bug still agrees
    upstream = result.rows[:result.rows.index(result.first)]
    assert upstream and all(r.passed and r.local_passed for r in upstream)


def test_model_restored_after_mutants(setup):
    model, ckpt, golden = setup
    for mutant in CATALOGUE.values():
        with pytest.raises(RuntimeError), mutant.apply(model, ckpt):
            raise RuntimeError("a failure inside the mutated run")  # must still restore
    result = compare_golden(model, golden)
    assert result.passed, f"a mutant left the model changed: {result.verdict()}"
