"""A/B benchmark gate: this checkout's stages against a reference revision's, interleaved in one run.

The calibrated gate (`harness.bench.baseline compare`) compares against times stored on another
day; on a shared 2-core VM the host's speed moves by 20-110% between runs, so its thresholds
are 50-300%. Here both builds run now, on the same checkpoint and inputs, each in its own
worker process (`ab_worker.py`, which imports the build it is given), and their rounds
alternate: candidate, reference, reference, candidate, ... (ABBA, so neither side always runs
first; rotated every two pairs, so with more workers each gets as many back-to-back rounds),
all workers on one CPU (`_one_cpu`). Each pair gives a ratio candidate / reference CPU time;
a stage's value is the median of its ratios: a phase of the host that lasts longer than one
pair slows both sides and cancels, one that hits a single round moves one ratio, which the
median ignores.

Rounds follow the stage's cost (more where cheap): `pairs` = ROUND_BUDGET_S / the stage's
time, within PAIRS_MIN..PAIRS_MAX, after two warm-up rounds per side (one above a second).
PAIRS_MIN is what the slowest stage needs: with 9 pairs of the ~1 s `generate` the median
read an injected 30% as 17% (1 run in 10); the median of 25 pairs has 0.6x that spread.
The threshold of each stage comes from its noise model (unmodified candidate against the
same code as reference, K runs; N = MARGIN x the largest |median ratio - 1| seen, rounded up
to a tier, never below FLOOR_PERCENT), stored in
golden/benchmarks/<machine class>/ab_threshold.json. The evidence (a slowdown of 30% injected
into one stage at a time is caught; 10 unmodified runs pass) is tools/bench_gate/evidence.py.

What it does not see: a slowdown that both builds share (an MLX or BLAS upgrade in the
environment) and slow creep below N per change; the stored-baseline gate is there for those.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.bench.baseline import REPO, TIERS, Missing, class_dir, gate_env
from harness.bench.machine import load_average
from harness.bench.plan import STAGES
from harness.errors import BadInput

WORKER = Path(__file__).with_name("ab_worker.py")
ROUND_BUDGET_S = 1.5      # CPU seconds of timed rounds per stage and side, about
PAIRS_MIN, PAIRS_MAX = 25, 201
MARGIN = 2.0
FLOOR_PERCENT = 15        # half the 30% slowdown the gate must catch
THRESHOLD_FILE = "ab_threshold.json"


def _one_cpu() -> None:
    """Run in each worker before exec: every worker on the same CPU, so all sides share its
    neighbours. Unpinned, a worker placed beside a busy neighbour kept reading 8-16% slower
    than an identical one for a whole stage (MLX hands each op to its stream thread and back,
    which costs CPU time when the two threads wait on each other across contended cores);
    pinned, 1.5-1.9% at the same load (3+3 sessions, load average 5-6). The rounds never
    overlap, so one CPU costs no time. Linux only: macOS has no CPU affinity."""
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


class Worker:
    """One build's stages in a subprocess; `time(stage)` runs it once -> CPU seconds."""

    def __init__(self, root: Path, checkpoint: Path, stages, slowdown: dict[str, float] | None = None):
        specs = [f"{k}={v}" for k, v in (slowdown or {}).items()]
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(root), str(checkpoint), ",".join(stages), *specs],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=gate_env(), cwd=root,
            preexec_fn=_one_cpu if hasattr(os, "sched_setaffinity") else None)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"A/B worker for {root} did not start (exit {self.proc.wait()})")

    def time(self, stage: str) -> float:
        self.proc.stdin.write(stage + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"A/B worker died timing {stage} (exit {self.proc.wait()})")
        return json.loads(line)["cpu"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


@contextlib.contextmanager
def reference_tree(rev: str):
    """The `harness` package of git revision `rev` of this checkout, in a temporary directory."""
    known = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet",
                            f"{rev}^{{commit}}"], capture_output=True)
    if known.returncode:
        raise BadInput(None, f"--reference {rev}: not a git revision of {REPO.name}")
    with tempfile.TemporaryDirectory(prefix="sao-ab-ref-") as tmp:
        git = subprocess.Popen(["git", "-C", str(REPO), "archive", rev, "harness"],
                               stdout=subprocess.PIPE)
        with tarfile.open(fileobj=git.stdout, mode="r|") as tar:
            tar.extractall(tmp, filter="data")
        if git.wait() != 0:
            raise RuntimeError(f"git archive {rev} failed")
        yield Path(tmp)


@dataclass
class StageResult:
    stage: str
    ratios: dict[str, list[float]] = field(default_factory=dict)  # candidate name -> per pair

    def median(self, name: str) -> float:
        return statistics.median(self.ratios[name])


def pairs_for(seconds: float) -> int:
    return max(PAIRS_MIN, min(PAIRS_MAX, int(ROUND_BUDGET_S / max(seconds, 1e-6))))


def run_ab(reference: Worker, candidates: dict[str, Worker], stages=STAGES,
           log=None) -> dict[str, StageResult]:
    """Every stage: warm-up rounds, then pairs in alternating order; -> per stage the ratio of
    each candidate to the reference in every pair."""
    results = {}
    for stage in stages:
        workers = [reference, *candidates.values()]
        names = ["", *candidates]
        first = [w.time(stage) for w in workers]
        if max(first) < 1.0:
            first = [w.time(stage) for w in workers]
        n = pairs_for(min(first))
        res = StageResult(stage, {c: [] for c in candidates})
        for i in range(n):
            # ABBA (no side always first), rotated every two pairs: with three workers
            # (tools/bench_gate/evidence.py) plain ABC CBA gave two of them back-to-back
            # rounds and never the middle one, which then read ~5% slow.
            shift = (i // 2) % len(workers)
            order = list(range(shift, len(workers))) + list(range(shift))
            if i % 2:
                order.reverse()
            t = {k: workers[k].time(stage) for k in order}
            for k in range(1, len(workers)):
                res.ratios[names[k]].append(t[k] / t[0])
        results[stage] = res
        if log:
            log(f"{stage:<18} pairs {n:>4}  " + "  ".join(
                f"{c}: {res.median(c):.3f}" for c in candidates))
    return results


def thresholds(cls: str | None = None) -> dict[str, int]:
    """Stage -> N (percent) for this machine class, from tools/bench_gate/evidence.py."""
    path = class_dir(cls) / THRESHOLD_FILE
    if not path.is_file():
        raise Missing(f"{path}: missing; measure it with tools/bench_gate/evidence.py "
                      f"(10 runs, then `summary --write`) on this machine class")
    return json.loads(path.read_text())["fail_percent"]


def tier(excess: float) -> int:
    need = max(excess * MARGIN * 100, FLOOR_PERCENT)
    return next((t for t in TIERS if t >= need), TIERS[-1])


def session(candidate_root: Path, reference_root: Path, checkpoint: Path, stages=STAGES,
            slowdowns: dict[str, dict[str, float]] | None = None, log=None) -> dict:
    """One A/B run: a reference worker, a candidate worker per entry of `slowdowns` (name ->
    injected slowdown; {"candidate": {}} by default). -> JSON-able record with the load."""
    slowdowns = slowdowns or {"candidate": {}}
    load = load_average()
    t0 = time.perf_counter()
    ref = Worker(reference_root, checkpoint, stages)
    cands = {n: Worker(candidate_root, checkpoint, stages, s) for n, s in slowdowns.items()}
    try:
        results = run_ab(ref, cands, stages, log)
    finally:
        for w in (ref, *cands.values()):
            w.close()
    return {"load_average_before": load and [round(x, 2) for x in load],
            "load_average_after": [round(x, 2) for x in (load_average() or ())],
            "seconds": round(time.perf_counter() - t0, 1),
            "median_ratio": {n: {s: round(r.median(n), 4) for s, r in results.items()}
                             for n in slowdowns},
            # in-run dispersion: median |ratio - median ratio| of the pairs
            "mad_ratio": {n: {s: round(statistics.median(abs(x - r.median(n)) for x in r.ratios[n]), 4)
                              for s, r in results.items()} for n in slowdowns},
            "pairs": {s: len(next(iter(r.ratios.values()))) for s, r in results.items()}}


def compare(reference: str, stages=STAGES, cls: str | None = None, log=print) -> int:
    """The A/B gate: this checkout against git revision `reference`, on the tiny seeded
    checkpoint. -> 0 when no stage's median ratio is over its N, else 1."""
    from harness.weights.synth import default_checkpoint

    limits = thresholds(cls)
    with reference_tree(reference) as ref:
        rec = session(REPO, ref, default_checkpoint("tiny"), stages, log=log)
    ratios = rec["median_ratio"]["candidate"]
    slower = [s for s in stages if ratios[s] - 1 > limits.get(s, FLOOR_PERCENT) / 100]
    log(f"A/B gate vs {reference} (load {rec['load_average_before']}, "
        f"{rec['seconds']:.0f} s): " +
        ("pass" if not slower else "FAIL: " + ", ".join(
            f"{s} x{ratios[s]:.2f} > +{limits.get(s, FLOOR_PERCENT)}%" for s in slower)))
    return 1 if slower else 0
