"""Where the full-size VAE decode spends its time: per kind of module, and the convs' GEMM rate.

    python tools/vae_profile/profile.py [--frames 32] [--rounds 3]

Builds the full-size decoder (`preset("full")`, random weights: speed does not depend on the
values) and runs it untiled, evaluating after every leaf module (snake, conv, conv-transpose,
residual add), so each one's wall time is its own; the best of `rounds` per module. Prints
one JSON line: seconds per kind, the convs' GEMM FLOP and their rate in GFLOP/s (compare
with tools/blas_rate/rate.py), and the whole decode (tiled, as `decode` runs it) for scale.
Run it with `harness.blas`'s environment (OpenBLAS preloaded), under the heavy-job lock.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict

import mlx.core as mx
import numpy as np

from harness.model.config import preset
from harness.model.layers import Conv1d, ConvTranspose1d, SnakeBeta
from harness.model.vae import AudioAutoencoder, ResidualUnit, _children


def gemm_flop(m, n_in: int, n_out: int) -> int:
    """2 x MACs of a conv or conv-transpose with n_in input and n_out output samples."""
    co, k, ci = m.weight.shape
    if isinstance(m, ConvTranspose1d):
        return 2 * n_in * ci * co * k
    return 2 * n_out * ci * co * k


def walk(module, x, times, flop):
    """Run `module` on x leaf by leaf, evaluating and timing each leaf."""
    if isinstance(module, (Conv1d, ConvTranspose1d, SnakeBeta)):
        mx.eval(x)
        t0 = time.perf_counter()
        y = module(x)
        mx.eval(y)
        kind = type(module).__name__
        if isinstance(module, Conv1d) and module.dilation > 1:
            kind += " (dilated)"
        times[kind].append(time.perf_counter() - t0)
        if not isinstance(module, SnakeBeta):
            flop[kind] += gemm_flop(module, x.shape[1], y.shape[1])
        return y
    if isinstance(module, ResidualUnit):
        y = x
        for m in module.layers:
            y = walk(m, y, times, flop)
        t0 = time.perf_counter()
        out = x + y
        mx.eval(out)
        times["residual add"].append(time.perf_counter() - t0)
        return out
    for m in _children(module):
        x = walk(m, x, times, flop)
    return x


def main() -> int:
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    frames, rounds = int(args.get("--frames", 32)), int(args.get("--rounds", 3))
    cfg = preset("full")
    vae = AudioAutoencoder(cfg.vae)
    mx.eval(vae.parameters())
    z = mx.array(np.random.default_rng(0).standard_normal(
        (1, cfg.vae.latent_dim, frames)).astype(np.float32))
    best: dict[str, float] = {}
    for _ in range(rounds):
        times, flop = defaultdict(list), defaultdict(int)
        walk(vae.decoder, z.swapaxes(1, 2), times, flop)
        for kind, ts in times.items():
            best[kind] = min(best.get(kind, float("inf")), sum(ts))
    whole = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        vae.decode(z)
        whole.append(time.perf_counter() - t0)
    total = sum(best.values())
    print(json.dumps({
        "frames": frames, "load_average_1min": round(os.getloadavg()[0], 2),
        "seconds": {k: round(v, 3) for k, v in sorted(best.items(), key=lambda kv: -kv[1])},
        "share": {k: round(v / total, 3) for k, v in best.items()},
        "gemm_gflop": {k: round(f / 1e9, 1) for k, f in flop.items()},
        "gemm_gflops": {k: round(f / 1e9 / best[k], 1) for k, f in flop.items()},
        "leaf_by_leaf_s": round(total, 3), "decode_tiled_best_s": round(min(whole), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
