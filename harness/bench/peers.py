"""Run the peers (official PyTorch, LiteRT) in the reference venv and return their table rows.

The harness's own env has no torch, so `harness.reference.peer_timing` runs under
the reference virtualenv's python (`harness.settings.reference_python`) on this source tree. When that
python is missing or the run fails, every peer row carries a note saying so and the MLX
rows are still reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

from harness.bench.runner import Row
from harness.errors import BadInput

PEER_IMPLS = ("torch", "litert")


def _note_rows(stages, impls, preset, frames, note) -> list[Row]:
    return [Row(s, i, preset, frames=frames.get(s), note=note) for s in stages for i in impls]


def peer_rows(checkpoint: Path, preset: str, stages: list[str], frames: dict[str, int],
              vae_frames: int, cache_dir: Path | None = None, impls=PEER_IMPLS,
              progress: bool = True) -> tuple[list[Row], dict]:
    """-> (rows, info: threads/versions/max RSS of the peer process, or the failure)."""
    from harness.settings import reference_python

    if not stages or not impls:
        return [], {}
    try:
        python = reference_python()
    except BadInput as e:
        return _note_rows(stages, impls, preset, frames, f"not run: {e}"), {}
    repo = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (repo, os.environ.get("PYTHONPATH")) if p))
    env.pop("LD_PRELOAD", None)  # torch and LiteRT bring their own BLAS/kernels
    cmd = [python, "-m", "harness.reference.peer_timing", "--checkpoint", str(checkpoint),
           "--stages", ",".join(stages), "--impls", ",".join(impls),
           "--vae-frames", str(vae_frames)]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    tail: deque[str] = deque(maxlen=20)
    for line in proc.stderr:  # stream progress (exports take minutes), keep the tail
        tail.append(line.rstrip())
        if progress and line.startswith("[peer_timing]"):
            print(line.rstrip(), file=sys.stderr, flush=True)
    out = proc.stdout.read()
    code = proc.wait()
    lines = [l for l in out.splitlines() if l.strip()]
    if code < 0:  # killed: on Linux SIGKILL is nearly always the out-of-memory killer
        why = "out of memory?" if -code == 9 else "killed"
        return _note_rows(stages, impls, preset, frames,
                          f"peer run killed by signal {-code} ({why})"), {}
    if code != 0 or not lines:
        last = next((l for l in reversed(tail) if l.strip()), "no output")
        return _note_rows(stages, impls, preset, frames,
                          f"peer run failed (exit {code}): {last[:200]}"), {}
    result = json.loads(lines[-1])
    rows = [Row(**r) for r in result.pop("rows")]
    return rows, result
