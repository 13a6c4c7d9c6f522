"""A verdict is "local" only when the module ran on the reference's own input.

The committed tiny-torch golden records every input its modules read (T5 per sublayer, the
DiT's norms, projections, residual stream and assembled tokens at every sampler step, the
decoder's input and the returned audio), so each of its tensors is teacher-forced. Take a
recorded input away and the module reading it can only be "local or inherited"; the mutants
of the classes the first goldens mislocalized are named exactly, locally, at the module
they live in (the whole catalogue: suites/mutants).
"""

from __future__ import annotations

from collections import OrderedDict

import pytest

from harness.compare.divergence import LOCAL_OR_INHERITED, compare_golden
from harness.compare.lineage import parents, teacher_forced
from harness.golden.store import Golden
from harness.mutants import get

B0 = "model.model.transformer.layers.0"


def _names(g: Golden) -> list[str]:
    return [n for n in g.manifest["order"] if not n.startswith("input.")]


def without(g: Golden, *drop: str) -> Golden:
    """The same golden with some recorded tensors left out (as if never recorded)."""
    order = [n for n in g.manifest["order"] if n not in drop]
    tensors = OrderedDict((n, g.tensors[n]) for n in order)
    return Golden(g.path, {**g.manifest, "order": order}, tensors)


def test_every_tensor_of_the_all_intermediates_golden_is_teacher_forced(golden):
    names = _names(golden)
    assert [n for n in names if parents(n, names) is None] == []
    assert [n for n in names if not teacher_forced(n, names)] == []
    # every sampler step has its DiT intermediates, each step reads the previous x
    steps = golden.manifest["settings"]["steps"]
    for i in range(1, steps):
        assert f"{B0}.self_attn.q_rotary@{i}" in names
        assert parents(f"model.model.preprocess_conv@{i}", names) == [f"sampler.steps.{i - 1}.x"]


def test_a_module_whose_input_is_not_recorded_is_not_forced(golden):
    names = [n for n in _names(golden) if n != f"{B0}.self_attn.to_qkv"]
    assert not teacher_forced(f"{B0}.self_attn.q_norm", names)
    assert teacher_forced(f"{B0}.self_attn.q_rotary", names)
    assert parents("some.unknown.module", names) is None
    assert not teacher_forced("some.unknown.module", names)


def test_unrecorded_input_gives_local_or_inherited(golden, loaded):
    """The prepended-token mutant, with the assembled token sequence left out of the golden,
    is first seen at pre_norm: wrong in the replay too, but pre_norm read the MLX model's own
    tokens, so the verdict cannot say local."""
    model, ckpt = loaded
    thinned = without(golden, *[n for n in golden.manifest["order"]
                                if n.split("@")[0] == f"{B0}.input"])
    with get("prepended-token-appended").apply(model, ckpt):
        result = compare_golden(model, thinned)
    assert result.first.name == f"{B0}.pre_norm", result.verdict()
    assert not result.first.forced and not result.first.local_passed
    assert result.verdict().endswith(f", {LOCAL_OR_INHERITED}")


EXACT = ["t5-embedding-scaled", "t5-position-bias-mirrored", "t5-rmsnorm-as-layernorm",
         "t5-attention-scaled", "t5-ff-gelu", "prepended-token-appended", "residual-after-norm",
         "latents-reshaped-not-transposed", "decode-returns-interleaved",
         "run-returns-channels-swapped", "timestep-fp16"]


@pytest.mark.parametrize("name", EXACT)
def test_boundary_mutant_is_local_at_its_module(name, golden, loaded):
    model, ckpt = loaded
    mutant = get(name)
    with mutant.apply(model, ckpt):
        result = compare_golden(model, golden)
    first = result.first
    assert first is not None, f"{name} went undetected: {result.verdict()}"
    assert first.name.split("@")[0] == mutant.expected_module, result.verdict()
    assert first.where == "local", result.verdict()
    upstream = result.rows[:result.rows.index(first)]
    assert all(r.passed for r in upstream)
