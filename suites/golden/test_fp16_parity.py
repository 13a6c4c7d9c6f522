"""The bundled model loaded in float16 (`compare --dtype fp16`) matches the committed tiny
goldens within the FP16 policy (harness/golden/tolerances.py), whose floors were measured on
these cases: a float16 path that overflows or loses more than float16 rounding fails here
(that it computes in float16 at all: suites/model/test_compute_dtype.py). The two euler
cases (every DiT intermediate at every step, both tiny presets) run by default (~0.5 s
each); every tiny case under `nightly` (float16 is slow on the CPU: the 1024-frame case
alone takes ~9 s).
"""

from __future__ import annotations

import mlx.core as mx
import pytest

from harness.compare.divergence import compare_case
from harness.golden.store import DEFAULT_ROOT

SYNTH = ("tiny-litert", "tiny-torch", "tiny-torch-cfg", "tiny-torch-euler", "tiny-torch-long")
TRAINED = ("tiny-trained-torch", "tiny-trained-torch-cfg", "tiny-trained-torch-euler",
           "tiny-trained-torch-long")
DEFAULT = ("tiny-torch-euler", "tiny-trained-torch-euler")


@pytest.fixture(scope="module")
def float16_models(tiny_checkpoint):
    from harness.weights.load import load_model
    from harness.weights.trained import trained_checkpoint

    return {"synth": load_model(tiny_checkpoint, mx.float16),
            "trained": load_model(trained_checkpoint(), mx.float16)}


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=[] if c in DEFAULT else [pytest.mark.nightly]) for c in SYNTH + TRAINED])
def test_float16_within_fp16_floors(case, float16_models):
    model, ckpt = float16_models["trained" if case in TRAINED else "synth"]
    result = compare_case(DEFAULT_ROOT / case, model, ckpt, dtype="fp16")
    assert result.policy.dtype == "fp16"
    assert result.passed, f"{case}: {result.verdict()}"
