"""Full-size VAE decode, MLX (one or two source trees) against the peers, interleaved.

    python tools/vae_profile/interleaved.py --checkpoint DIR --ref-python PY
        [--before SRC] [--frames 256] [--rounds 2]

Each round runs, one after the other, a child process per MLX source tree (`--before SRC`: an
older checkout, e.g. `git archive <rev> | tar -x -C SRC`; then this checkout) decoding the
bench's fixed latents (`harness.bench.plan.fixed_inputs`) once, and one peer process
(`harness.reference.peer_timing --stages vae_decode`: torch, then LiteRT) on the same
checkpoint and latents. MLX children get `harness.blas.runtime_env` (OpenBLAS preloaded); the
peer gets LD_PRELOAD and OPENBLAS_CORETYPE removed, as `sao-harness bench` does. Prints one
JSON line per child (seconds, peak RSS, 1-minute load average before it) and a summary: best
of rounds per implementation and each one's ratio to the fastest peer. Run it under the
heavy-job lock; a LiteRT export at a new frame count takes minutes the first time (cached).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, resource, sys, time
import mlx.core as mx
from harness.bench.plan import fixed_inputs
from harness.weights.load import load_model
model, _ = load_model(sys.argv[1])
z = mx.array(fixed_inputs(model.config, int(sys.argv[2])).noise)
mx.eval(z)
t0 = time.perf_counter()
mx.eval(model.vae.decode(z))
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _last_json(out: str) -> dict:
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def mlx_child(src: Path, checkpoint: str, frames: int) -> dict:
    from harness.blas import runtime_env

    env = dict(os.environ, **runtime_env(), PYTHONPATH=str(src), SAO_HARNESS_QUIET="1")
    out = subprocess.run([sys.executable, "-c", CHILD, checkpoint, str(frames)], env=env,
                         check=True, capture_output=True, text=True, cwd=src).stdout
    return _last_json(out)


def peer_child(python: str, checkpoint: str, frames: int, cache_dir: str | None) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "OPENBLAS_CORETYPE")}
    env["PYTHONPATH"] = str(REPO)
    cmd = [python, "-m", "harness.reference.peer_timing", "--checkpoint", checkpoint,
           "--stages", "vae_decode", "--impls", "torch,litert", "--vae-frames", str(frames)]
    if cache_dir:
        cmd += ["--cache-dir", cache_dir]
    result = _last_json(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                       text=True).stdout)
    return [{"impl": r["impl"], "seconds": r["min_s"], "note": r.get("note"),
             "peer_process_max_rss_mb": result.get("max_rss_mb")} for r in result["rows"]]


def main() -> int:
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    ckpt, frames = args["--checkpoint"], int(args.get("--frames", 256))
    trees = ([("mlx-before", Path(args["--before"]))] if "--before" in args else []) + \
        [("mlx", REPO)]
    best: dict[str, dict] = {}
    for r in range(int(args.get("--rounds", 2))):
        rows = []
        for name, src in trees:
            load = os.getloadavg()[0]
            rows.append({"impl": name, "load_average_1min": round(load, 2),
                         **mlx_child(src, ckpt, frames)})
        load = os.getloadavg()[0]
        rows += [{**p, "load_average_1min": round(load, 2)}
                 for p in peer_child(args["--ref-python"], ckpt, frames, args.get("--cache-dir"))]
        for row in rows:
            print(json.dumps({"round": r, **row}), flush=True)
            if row.get("seconds") and row["seconds"] < best.get(row["impl"], {}).get("seconds", 1e30):
                best[row["impl"]] = row
    peers = [v["seconds"] for k, v in best.items() if k in ("torch", "litert")]
    fastest = min(peers) if peers else None
    print(json.dumps({"frames": frames, "best_of_rounds": {
        k: {"seconds": round(v["seconds"], 2), "load_average_1min": v["load_average_1min"],
            "ratio_to_fastest_peer": round(v["seconds"] / fastest, 2) if fastest else None}
        for k, v in best.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
