"""Calibrated benchmark times: each timed round next to a fixed calibration kernel.

On a shared VM the speed of the host moves by up to ~2x for whole runs (a vCPU's sibling,
its frequency, the neighbours), and from one CPU model to another by 2-4x: a stored time in
seconds can then only catch a model ~2.5x slower. Every gated round therefore runs, in the same
process and just before the stage, a fixed kernel with the stage's kind of work (GEMMs through
the BLAS MLX uses, fused elementwise polynomials, a chain of small ops), timed by the same
timer. The benchmark's value for a round is its time divided by the fastest calibration run of
that benchmark: a dimensionless "calibration units" (shown by pytest-benchmark as if seconds),
in which a host that is uniformly faster or slower reads the same. The raw minimum in seconds
and the calibration's are kept in each benchmark's extra_info.

A plain `pytest --benchmark-compare` (wall clock, threaded BLAS) computes the same ratio with
its own timer, so it reads the stored baseline in the same unit, not +400%.
"""

from __future__ import annotations

from typing import Callable

import mlx.core as mx
import numpy as np

from harness.model import fastmath

UNIT = "calibration units"  # extra_info["unit"] of a calibrated benchmark


def calibration_kernel() -> Callable[[], None]:
    """~2-5 ms of MLX work on one core: four 256x256x256 GEMMs with SiLU between them, a snake
    over 128K elements, and 30 small ops (the dispatch overhead the tiny stages are made of)."""
    rng = np.random.default_rng(0)
    x = mx.array(rng.standard_normal((256, 256)).astype(np.float32))
    w = mx.array(rng.standard_normal((256, 256)).astype(np.float32) / 16)
    s = mx.array(rng.standard_normal((1, 2048, 64)).astype(np.float32))
    alpha, inv_beta = mx.ones((64,)), mx.ones((64,))
    small = mx.array(rng.standard_normal((8, 32)).astype(np.float32))
    mx.eval(x, w, s, alpha, inv_beta, small)

    def run() -> None:
        h = x
        for _ in range(4):
            h = fastmath.silu(h @ w)
        y = fastmath.snake(s, alpha, inv_beta)
        z = small
        for _ in range(30):
            z = mx.tanh(z * 0.5 + 0.1)
        mx.eval(h, y, z)

    run()
    return run


class Calibrated:
    """pytest-benchmark `setup` that times the calibration kernel before each round."""

    def __init__(self, timer: Callable[[], float]):
        self.timer = timer
        self.kernel = calibration_kernel()
        self.times: list[float] = []

    def __call__(self) -> None:
        t0 = self.timer()
        self.kernel()
        self.times.append(self.timer() - t0)

    def apply(self, benchmark) -> None:
        """Turn the benchmark's round times into calibration units, in place (before
        pytest-benchmark computes any statistic from them)."""
        data = benchmark.stats.stats.data
        cal = min(self.times[-len(data):])
        raw_min = min(data)
        data[:] = [d / cal for d in data]
        benchmark.extra_info.update(unit=UNIT, raw_min_s=raw_min, calibration_min_s=cal)
