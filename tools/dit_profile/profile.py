"""Where the full-size DiT forward spends its time: per kind of op, and the GEMMs' rate in place.

    python tools/dit_profile/profile.py [--frames 256] [--rounds 3] [--config full] [--hot-seconds 0.3]

Builds the full-size DiT (`preset("full")` or another preset, random weights: speed does not depend on the
values) and runs its forward with every op of a timed kind (linear layers, layer norms, q/k
norms, RoPE, the attention's two batched matmuls and its softmax, the GLU gate, SiLU, 1x1
convs, Fourier features) wrapped so that its inputs are evaluated first and its output
right after: that op's wall time is its own. `glue` is the rest: residual adds, head
reshapes/transposes, splits and the concatenation of the prepended token, evaluated when the
next timed op needs them. Best of `rounds` (by whole instrumented forward). Also times the
plain forward (one lazy graph, as the model runs) and each linear shape alone, repeated for
0.3 s (--hot-seconds) as tools/blas_rate/rate.py does (weight hot in cache, BLAS threads
awake): the GEMM rate in place against the rate that tool reports.
Prints one JSON line. Run it with `harness.blas`'s environment, under the heavy-job lock.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from harness.model import dit, fastmath, layers
from harness.model.capture import set_paths
from harness.model.config import preset


class Clock:
    """Splits a forward's wall time into op kinds; the time between timed ops is `glue`."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.linear_shapes = defaultdict(int)  # (m, k, n) -> calls
        self.linear_seconds = defaultdict(float)  # (m, k, n) -> seconds in place
        self.last = time.perf_counter()

    def timed(self, kind, fn):
        def run(*args, **kwargs):
            mx.eval([a for a in (*args, *kwargs.values()) if isinstance(a, mx.array)])
            t0 = time.perf_counter()
            self.seconds["glue"] += t0 - self.last
            out = fn(*args, **kwargs)
            mx.eval(out)
            self.last = time.perf_counter()
            self.seconds[kind] += self.last - t0
            return out
        return run

    def linear(self, fn):
        timed = self.timed("linear", fn)

        def run(module, x, *args):  # __call__, or chunks(x, n)
            n, k = module.weight.shape
            shape = (int(np.prod(x.shape[:-1])), k, n)
            self.linear_shapes[shape] += 1
            before = self.seconds["linear"]
            out = timed(module, x, *args)
            self.linear_seconds[shape] += self.seconds["linear"] - before
            return out
        return run


@contextmanager
def patched(targets):
    """Temporarily replace attributes: targets = [(owner, name, new value)]."""
    old = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]
    for owner, name, value in targets:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in old:
            setattr(owner, name, value)


def instrumented(clock: Clock):
    matmul = clock.timed("attention matmuls", lambda a, b: a @ b)
    softmax = clock.timed("attention softmax", fastmath.softmax)

    def attention(q, k, v, scale):  # fastmath.attention's ops, each timed
        return matmul(softmax(matmul(q * scale, k.swapaxes(-1, -2))), v)

    return patched([
        (layers.Linear, "__call__", clock.linear(layers.Linear.__call__)),
        (layers.Linear, "chunks", clock.linear(layers.Linear.chunks)),
        (layers.LayerNorm, "__call__", clock.timed("layer norms", layers.LayerNorm.__call__)),
        (nn.LayerNorm, "__call__", clock.timed("q/k norms", nn.LayerNorm.__call__)),
        (layers.Conv1d, "__call__", clock.timed("1x1 convs", layers.Conv1d.__call__)),
        (layers.SiLU, "__call__", clock.timed("silu", layers.SiLU.__call__)),
        (dit.FourierFeatures, "__call__", clock.timed("fourier", dit.FourierFeatures.__call__)),
        (dit, "apply_rotary", clock.timed("rope", dit.apply_rotary)),
        (dit.fastmath, "gated_silu", clock.timed("glu gate", fastmath.gated_silu)),
        (dit.fastmath, "attention", attention),
    ])


def best_of(fn, rounds: int = 0, seconds: float = 0.0) -> float:
    """Best wall time of `rounds` calls, or of as many as fit in `seconds` (at least one)."""
    best, end = float("inf"), time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        rounds -= 1
        if rounds <= 0 and time.perf_counter() >= end:
            return best


def main() -> int:
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    frames, rounds = int(args.get("--frames", 256)), int(args.get("--rounds", 3))
    hot_seconds = float(args.get("--hot-seconds", 0.3))
    cfg = preset(args.get("--config", "full")).dit
    model = dit.DiffusionTransformer(cfg)
    set_paths(model)
    rng = np.random.default_rng(0)
    model.update(nn.utils.tree_map(
        lambda p: mx.array(0.02 * rng.standard_normal(p.shape).astype(np.float32)),
        model.parameters()))
    x = mx.array(rng.standard_normal((1, cfg.io_channels, frames)).astype(np.float32))
    t = mx.array([0.5], dtype=mx.float32)
    cross = mx.array(rng.standard_normal((1, 65, cfg.cond_token_dim)).astype(np.float32))  # 64 T5 + seconds
    global_ = mx.array(rng.standard_normal((1, cfg.global_cond_dim)).astype(np.float32))
    mx.eval(model.parameters(), x, t, cross, global_)
    forward = lambda: mx.eval(model(x, t, cross, global_))

    forward()
    plain = best_of(forward, rounds)
    best = None
    for _ in range(rounds + 1):  # the first is a warm-up
        clock = Clock()
        with instrumented(clock):
            t0 = clock.last = time.perf_counter()
            forward()
            total = time.perf_counter() - t0
        clock.seconds["glue"] += time.perf_counter() - clock.last
        if best is None or total < best[0]:
            best = (total, clock)
    total, clock = best

    flop = {s: 2 * s[0] * s[1] * s[2] * c for s, c in clock.linear_shapes.items()}
    hot = {}
    for (m, k, n), calls in clock.linear_shapes.items():
        a = mx.array(rng.standard_normal((m, k)).astype(np.float32))
        w = mx.array(rng.standard_normal((n, k)).astype(np.float32))
        mx.eval(a, w)
        hot[(m, k, n)] = best_of(lambda: mx.eval(a @ w.T), seconds=hot_seconds) * calls
    gemm_flop = sum(flop.values())
    print(json.dumps({
        "frames": frames, "best_of_rounds": rounds,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "plain_forward_s": round(plain, 3), "instrumented_forward_s": round(total, 3),
        "seconds": {k: round(v, 6) for k, v in sorted(clock.seconds.items(), key=lambda kv: -kv[1])},
        "linear_calls": sum(clock.linear_shapes.values()),
        "linear_gflop": round(gemm_flop / 1e9, 1),
        "linear_gflops_in_place": round(gemm_flop / clock.seconds["linear"] / 1e9, 1),
        "linear_gflops_hot": round(gemm_flop / sum(hot.values()) / 1e9, 1),
        "linear_shapes_gflops_in_place_hot": {
            "x".join(map(str, s)): [round(flop[s] / t / 1e9, 1) for t in
                                    (clock.linear_seconds[s], hot[s])]
            for s in sorted(hot, key=lambda s: -flop[s])},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
