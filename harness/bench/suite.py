"""Latency of each MLX stage (pytest-benchmark), tiny and full: the benchmarks the gate times.

They ship inside the package, so `sao-harness bench record|compare|noise` works from a wheel
outside a checkout (fixtures come from the sao-harness pytest plugin); suites/bench runs them
as its smoke test by importing them.

Not a speed assert: the default `pytest suites/` runs these with --benchmark-disable (each
stage once, untimed, as a smoke test of the benchmark code and of the stage's output);
timed runs and the regression gate are described in golden/benchmarks/README.md. Timed
values are in calibration units (`harness.bench.calibration`): each round's time over the
fastest run of a fixed kernel timed just before each round.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from harness.bench.calibration import Calibrated
from harness.bench.machine import machine_class
from harness.bench.plan import STAGES, rounds_for
from harness.bench.runner import max_rss_mb
from harness.blas import blas_advice

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


@pytest.mark.bench
@pytest.mark.parametrize("stage", STAGES)
def test_stage(benchmark, bench_stages, stage):
    preset, stages = bench_stages
    s = stages[stage]
    warmup, rounds = rounds_for(preset, stage)
    benchmark.group = preset
    benchmark.extra_info.update(preset=preset, stage=stage, frames=s.frames,
                                machine_class=machine_class(), blas=blas_advice())
    mx.reset_peak_memory()
    calibrated = Calibrated(benchmark._timer)  # the timer pytest-benchmark times rounds with
    outputs = benchmark.pedantic(s.fn, setup=calibrated, rounds=rounds, warmup_rounds=warmup,
                                 iterations=1)
    if not benchmark.disabled:
        calibrated.apply(benchmark)
    benchmark.extra_info["mlx_peak_mb"] = round(mx.get_peak_memory() / 2**20, 1)
    benchmark.extra_info["max_rss_mb"] = round(max_rss_mb(), 1)  # process peak so far

    # What was timed produced real output of the stage's length.
    first = np.array(outputs[0])
    assert all(np.isfinite(np.array(o)).all() for o in outputs), f"{stage}: non-finite output"
    if s.out_length is not None:
        assert first.shape[-1] == s.out_length, f"{stage}: output {first.shape}"
