"""Benchmark fixtures: the MLX stages of `harness.bench.stages`, built once per preset.

Each benchmark is parametrized over presets: `tiny` always, `full` under the `full` marker
(its seeded checkpoint comes from the root conftest's `full_checkpoint`).
"""

from __future__ import annotations

import pytest

PRESETS = [pytest.param("tiny", id="tiny"),
           pytest.param("full", id="full", marks=pytest.mark.full)]


@pytest.fixture(scope="session", params=PRESETS)
def bench_stages(request):
    """(preset, {stage name: Stage}) with every stage's inputs computed and evaluated."""
    from harness.bench.stages import build_stages

    if request.param == "tiny":
        model = request.getfixturevalue("tiny_model")
    else:
        from harness.weights.load import load_model

        model, _ = load_model(request.getfixturevalue("full_checkpoint"))
    return request.param, build_stages(model)
