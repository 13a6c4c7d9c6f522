"""Where the full-size VAE decode spends its time: per kind of module, and the convs' GEMM rate.

    python tools/vae_profile/profile.py [--frames 32] [--rounds 3] [--per-core 1 | --groups 1]

Builds the full-size decoder (`preset("full")`, random weights: speed does not depend on the
values) and runs it untiled, evaluating after every leaf module (snake, conv, conv-transpose,
residual add), so each one's wall time is its own; the best of `rounds` per module. Prints
one JSON line: seconds per kind, the convs' GEMM FLOP and their rate in GFLOP/s (compare
with tools/blas_rate/rate.py), and the whole decode (tiled, as `decode` runs it) for scale.
Run it with `harness.blas`'s environment (OpenBLAS preloaded), under the heavy-job lock.

`--per-core 1` profiles what one core does in the tiled decode instead: the middle tile of each
segment, leaf by leaf, on one stream with one BLAS thread (as each stream runs while tiles go
two at a time), in process CPU time (steadier than wall time on a loaded machine), each
segment's times multiplied by its tile count: the whole decode's work summed over the cores.

`--groups 1` times the tiled decode as `decode` runs it, group of tiles by group (one tile per
CPU stream, evaluated together): per segment, the groups' median and slowest wall time, the
time lost in groups slower than 1.5x the median (stalls: a stream descheduled, or waiting on
the other), CPU time / wall time (2.0 = both cores busy) and minor page faults (a heap that
grows). One JSON line per round.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections import defaultdict

import mlx.core as mx
import numpy as np

from harness import blas
from harness.model import fastmath
from harness.model import vae as vae_mod
from harness.model.config import preset
from harness.model.layers import Conv1d, ConvTranspose1d, SnakeBeta
from harness.model.vae import AudioAutoencoder, ResidualUnit, _children


def gemm_flop(m, n_in: int, n_out: int) -> int:
    """2 x MACs of a conv or conv-transpose with n_in input and n_out output samples."""
    co, k, ci = m.weight.shape
    if isinstance(m, ConvTranspose1d):
        return 2 * n_in * ci * co * k
    return 2 * n_out * ci * co * k


def walk(module, x, times, flop, clock=time.perf_counter, weight=1):
    """Run `module` on x leaf by leaf, evaluating and timing each leaf (`weight` copies)."""
    if isinstance(module, (Conv1d, ConvTranspose1d, SnakeBeta)):
        mx.eval(x)
        t0 = clock()
        y = module(x)
        mx.eval(y)
        kind = type(module).__name__
        if isinstance(module, Conv1d) and module.dilation > 1:
            kind += " (dilated)"
        times[kind].append((clock() - t0) * weight)
        if not isinstance(module, SnakeBeta):
            flop[kind] += gemm_flop(module, x.shape[1], y.shape[1]) * weight
        return y
    if isinstance(module, ResidualUnit):
        y = x
        for m in module.layers:
            y = walk(m, y, times, flop, clock, weight)
        t0 = clock()
        out = x + y
        mx.eval(out)
        times["residual add"].append((clock() - t0) * weight)
        return out
    for m in _children(module):
        x = walk(m, x, times, flop, clock, weight)
    return x


def walk_tiles(decoder, x, times, flop):
    """One core's share of the tiled decode: each segment's middle tile, weighted by the
    segment's tile count, on one stream with one BLAS thread, in CPU time."""
    src = vae_mod._Tiles(x)
    with blas.threads(1), fastmath.keep_snake_inputs():
        for segment in vae_mod.decoder_segments(decoder):
            n_in, n_out = src.length, vae_mod.out_length(segment, src.length)
            tile = vae_mod.tile_length(segment, vae_mod.TILE_ELEMENTS)
            tiles = -(-n_out // tile)
            a = tiles // 2 * tile
            lo, hi = vae_mod.input_span(segment, a, min(a + tile, n_out))
            walk(segment, src.read(max(lo, 0), min(hi, n_in)), times, flop, time.process_time,
                 tiles)
            src = vae_mod.run_segment(segment, src, vae_mod.TILE_ELEMENTS)


def group_times(decoder, x) -> dict:
    """The tiled decode group by group: per segment, wall-time statistics of its groups."""
    src, segments = vae_mod._Tiles(x), []
    t_all = time.perf_counter()
    for segment in vae_mod.decoder_segments(decoder):
        times: list[float] = []
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        src = vae_mod.run_segment(segment, src, vae_mod.TILE_ELEMENTS, times.append)
        r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
        med = statistics.median(times)
        segments.append({
            "groups": len(times), "wall_s": round(wall, 3), "median_ms": round(med * 1e3, 1),
            "max_ms": round(max(times) * 1e3, 1),
            "stall_s": round(sum(t - med for t in times if t > 1.5 * med), 3),
            "cpu_per_wall": round((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / wall, 2),
            "minor_faults": r1.ru_minflt - r0.ru_minflt})
    return {"decode_s": round(time.perf_counter() - t_all, 3), "segments": segments}


def main() -> int:
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    frames, rounds = int(args.get("--frames", 32)), int(args.get("--rounds", 3))
    per_core = args.get("--per-core", "0") == "1"
    cfg = preset("full")
    vae = AudioAutoencoder(cfg.vae)
    mx.eval(vae.parameters())
    z = mx.array(np.random.default_rng(0).standard_normal(
        (1, cfg.vae.latent_dim, frames)).astype(np.float32))
    if args.get("--groups", "0") == "1":
        for r in range(rounds):
            print(json.dumps({"frames": frames, "round": r,
                              "load_average_1min": round(os.getloadavg()[0], 2),
                              **group_times(vae.decoder, z.swapaxes(1, 2))}), flush=True)
        return 0
    best: dict[str, float] = {}
    for _ in range(rounds):
        times, flop = defaultdict(list), defaultdict(int)
        if per_core:
            walk_tiles(vae.decoder, z.swapaxes(1, 2), times, flop)
        else:
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
        "frames": frames, "per_core": per_core,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "seconds": {k: round(v, 3) for k, v in sorted(best.items(), key=lambda kv: -kv[1])},
        "share": {k: round(v / total, 3) for k, v in best.items()},
        "gemm_gflop": {k: round(f / 1e9, 1) for k, f in flop.items()},
        "gemm_gflops": {k: round(f / 1e9 / best[k], 1) for k, f in flop.items()},
        "leaf_by_leaf_s": round(total, 3), "decode_tiled_best_s": round(min(whole), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
