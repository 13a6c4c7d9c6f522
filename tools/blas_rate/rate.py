"""sgemm GFLOP/s of the BLAS behind MLX against torch's, at the full DiT's GEMM shapes, interleaved.

    python tools/blas_rate/rate.py --ref-python PY [--rounds 5]

Alternates two child processes `rounds` times: this python timing fp32 matmuls through MLX
(with `harness.blas.runtime_env`: Debian's OpenBLAS preloaded, its kernel family; a preset
OPENBLAS_CORETYPE is kept) and the reference venv's python timing them through torch (its
own BLAS, LD_PRELOAD and OPENBLAS_CORETYPE removed), both with their default threads. A
child runs each shape for ~0.3 s and keeps its best rate; the driver keeps the best of each
impl over rounds and prints one JSON line, with the load average around each child.

Shapes: a full DiT block at 256 frames (257 tokens x 1024 wide: qkv, attention out and cross
q/out, GLU feed-forward in and out) and 1024^3. The forward is ~155 GFLOP of these GEMMs,
so 155 / (a rate) is the forward time that BLAS alone would allow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

SHAPES = [(257, 1024, 3072), (257, 1024, 1024), (257, 1024, 8192), (257, 4096, 1024),
          (1024, 1024, 1024)]
# GEMM FLOP of one DiT block per shape (qkv, self out + cross q + cross out, ff in, ff out)
BLOCK_USE = {(257, 1024, 3072): 1, (257, 1024, 1024): 3, (257, 1024, 8192): 1,
             (257, 4096, 1024): 1}


def _bench(matmul, make, m, k, n) -> float:
    a, b = make(m, k), make(k, n)
    matmul(a, b)
    best, end = float("inf"), time.perf_counter() + 0.3
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def child(impl: str) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    host = lambda m, n: rng.standard_normal((m, n)).astype(np.float32)
    if impl == "mlx":
        import mlx.core as mx

        make = lambda m, n: mx.array(host(m, n))
        matmul = lambda a, b: mx.eval(a @ b)
        info = {"mlx": mx.__version__, "coretype": os.environ.get("OPENBLAS_CORETYPE"),
                "preload": os.environ.get("LD_PRELOAD")}
    else:
        import torch

        make = lambda m, n: torch.from_numpy(host(m, n))
        matmul = torch.mm
        info = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    rates = {"x".join(map(str, s)): round(_bench(matmul, make, *s), 1) for s in SHAPES}
    return {"impl": impl, "gflops": rates, **info}


def block_rate(rates: dict) -> float:
    """Effective GFLOP/s over one DiT block's GEMMs (time-weighted by FLOP)."""
    flop = {s: 2 * s[0] * s[1] * s[2] * u for s, u in BLOCK_USE.items()}
    secs = sum(f / rates["x".join(map(str, s))] for s, f in flop.items())
    return sum(flop.values()) / secs


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2])))
        return 0
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    rounds = int(args.get("--rounds", 5))
    from harness.blas import runtime_env

    envs = {"mlx": (sys.executable, dict(os.environ, **runtime_env())),
            "torch": (args["--ref-python"], {k: v for k, v in os.environ.items()
                                             if k not in ("LD_PRELOAD", "OPENBLAS_CORETYPE")})}
    best, loads = {}, []
    for _ in range(rounds):
        for impl, (python, env) in envs.items():
            loads.append(round(os.getloadavg()[0], 2))
            out = subprocess.run([python, __file__, "--child", impl], env=env, check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.splitlines()[-1])
            prev = best.setdefault(impl, r)
            for shape, g in r["gflops"].items():
                prev["gflops"][shape] = max(prev["gflops"][shape], g)
    for r in best.values():
        r["dit_block_gflops"] = round(block_rate(r["gflops"]), 1)
        r["dit_forward_s_at_this_rate"] = round(155 / r["dit_block_gflops"], 3)
    print(json.dumps({"best_of_rounds": rounds, "load_average_1min": loads, **best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
