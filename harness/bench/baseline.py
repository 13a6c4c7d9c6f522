"""`sao-harness bench record|compare|noise`: stored pytest-benchmark baselines.

Baselines live in golden/benchmarks/<machine class>/<preset>.json (pytest-benchmark's own
JSON, written with --benchmark-json). `compare` re-runs the benchmarks with
--benchmark-compare=<that file> --benchmark-compare-fail=min:<N>%, N per benchmark from
the class's threshold.json, which `noise` writes from K repeated runs: N is that
benchmark's largest run-to-run spread of min, times a margin, rounded up to a tier.
Benchmarks sharing a tier run in one pytest call (compare-fail takes one N per call).

What the gate times: CPU time (`time.process_time`) with single-threaded BLAS, min over
rounds, in calibration units (`harness.bench.calibration`: each round over a fixed kernel
timed just before it, so a host that is slower or faster for a whole run reads the same). On a shared 2-core machine (load average ~8) the wall-clock min of the tiny stages
spread by up to 460% between identical runs; their CPU time by 8-18% for stages of 25 ms
and more, and up to ~80% for the 1-5 ms ones (per-op overhead and syscalls, which suffer
most from contention). CPU time catches every regression that adds work (extra ops, a
slower kernel, a redundant pass); it does not see lost parallelism or time spent waiting:
the wall-clock, all-threads latencies are `sao-harness bench`'s job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from harness.bench.calibration import UNIT
from harness.bench.machine import load_average, machine_class, machine_family
from harness import settings
from harness.errors import BadInput
from harness.progress import progress

REPO = Path(__file__).resolve().parents[2]
ROOT = settings.golden_dir() / "benchmarks"
# The stage benchmarks ship in the package; pytest runs them with the package's parent as
# rootdir, so their full names (what baselines are keyed by) are the same in a checkout and
# in a wheel: harness/bench/suite.py::test_stage[tiny-t5].
BENCH_FILE = "harness/bench/suite.py"
MARGIN = 2.0   # N >= MARGIN x the largest spread of min measured by `noise` (see README)
CROSS_CPU_PERCENT = 20  # added to N against another CPU model's baseline (see README)
TIERS = (10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000)  # percent

# Timer and threads of every gated run (baselines, comparisons, noise measurements).
GATE_ARGS = ("--benchmark-enable", "--benchmark-timer=time.process_time", "-p", "no:cacheprovider")
GATE_THREADS = {"OPENBLAS_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


class Missing(BadInput):
    """A baseline or threshold file this machine class does not have (exit 2)."""

    def __init__(self, problem: str):
        super().__init__(None, problem)


def class_dir(cls: str | None = None) -> Path:
    return ROOT / (cls or machine_class())


def gate_env() -> dict[str, str]:
    """This environment plus `harness.blas.runtime_env` (what users run: the OpenBLAS preload
    with its kernel family, the heap settings) and single-threaded BLAS. The same whether or
    not the calling shell ran `eval "$(python -m harness.blas)"`, so a baseline recorded by
    hand and the CI comparison time the same kernels."""
    from harness.blas import runtime_env

    return dict(os.environ, **runtime_env(), **GATE_THREADS)


def pytest_cmd(preset: str, *extra: str, nodes: tuple[str, ...] = (BENCH_FILE,)) -> list[str]:
    marker = "bench and full" if preset == "full" else "bench and not full"
    return [sys.executable, "-m", "pytest", *nodes, "-m", marker, *GATE_ARGS, "-q",
            f"--rootdir={REPO}",
            "--benchmark-columns=min,median,max,rounds", *extra]


def _run(cmd: list[str], stdout=None) -> int:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=REPO, env=gate_env(), stdout=stdout).returncode


def thresholds(cls_dir: Path) -> dict[str, int]:
    """Benchmark full name -> N (percent) for this machine class."""
    path = cls_dir / "threshold.json"
    if not path.is_file():
        raise Missing(f"{path}: missing; run `sao-harness bench noise --write` "
                      f"on this machine class first")
    return {k: int(v) for k, v in json.loads(path.read_text())["fail_min_percent"].items()}


def min_spread(mins: dict[str, list[float]]) -> dict[str, float]:
    """Benchmark -> max/min - 1 of its `min` over runs: the largest slowdown an unchanged
    model showed between two runs (what a baseline comparison would call a regression)."""
    return {name: max(v) / min(v) - 1 for name, v in mins.items()}


def tier(spread: float) -> int:
    need = spread * MARGIN * 100
    return next((t for t in TIERS if t >= need), TIERS[-1])


def mins_of(runs: list[dict], raw: bool = False) -> dict[str, list[float]]:
    """Benchmark -> its min in every run (calibrated; raw: seconds, from extra_info)."""
    mins: dict[str, list[float]] = {}
    for run in runs:
        for b in run["benchmarks"]:
            value = b["extra_info"].get("raw_min_s") if raw else b["stats"]["min"]
            if value is not None:
                mins.setdefault(b["fullname"], []).append(value)
    return {k: v for k, v in mins.items() if len(v) == len(runs)}


def threshold_record(mins: dict[str, list[float]], preset: str, loads: list,
                     raw: dict[str, list[float]] | None = None) -> dict:
    spreads = min_spread(mins)
    raw_spreads = min_spread(raw or {})
    return {"fail_min_percent": {k: tier(s) for k, s in spreads.items()},
            "spread_of_min_percent": {k: round(s * 100, 1) for k, s in spreads.items()},
            "unit": UNIT,
            "raw_spread_of_min_percent": {k: round(s * 100, 1) for k, s in raw_spreads.items()},
            "margin": MARGIN, "tiers": list(TIERS), "preset": preset,
            "runs": len(next(iter(mins.values()), [])), "cpu_count": os.cpu_count(),
            "timer": "time.process_time", "blas_threads": 1,
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "load_average_1min_before_each_run": loads,
            "min_per_run_s": {k: [round(x, 6) for x in v] for k, v in mins.items()}}


def record(preset: str, cls: str | None = None) -> int:
    """Run the benchmarks and store them as this machine class's baseline; -> pytest's exit."""
    out = class_dir(cls) / f"{preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    code = _run(pytest_cmd(preset, f"--benchmark-json={out}"))
    if code == 0:
        print(f"baseline written: {out}")
    return code


def baseline_dir(cls: str | None, preset: str) -> tuple[Path, str | None]:
    """-> (the class dir holding the baseline, a note when it is another CPU's).

    This machine class first; else a class of the same family (OS, architecture, cores) with
    another CPU model. Calibrated units make that comparable, but a CPU changes the ratio of
    GEMM to elementwise speed, so the thresholds get CROSS_CPU_PERCENT more (and it is said)."""
    d = class_dir(cls)
    if (d / f"{preset}.json").is_file() or cls or settings.machine_class_override():
        return d, None
    siblings = sorted(p for p in ROOT.glob(f"{machine_family()}-*")
                      if (p / f"{preset}.json").is_file())
    if not siblings:
        return d, None
    return siblings[0], (f"no baseline for {d.name}: comparing calibrated units with "
                         f"{siblings[0].name}'s (another CPU model), thresholds +"
                         f"{CROSS_CPU_PERCENT}%; record one for this CPU to gate tighter")


def compare(preset: str, cls: str | None = None, fail_percent: int | None = None,
            stdout=None) -> dict:
    """Re-run the benchmarks against the stored baseline; -> {"passed", "baseline", ...}.
    pytest's own output goes to `stdout` (default: inherited)."""
    d, note = baseline_dir(cls, preset)
    base = d / f"{preset}.json"
    if not base.is_file():
        raise Missing(f"{base}: missing; record it with "
                      f"`sao-harness bench record --config {preset}`")
    if note:
        print(f"benchmark gate: {note}", file=sys.stderr)
    benches = json.loads(base.read_text())["benchmarks"]
    timers = {b["options"].get("timer") for b in benches}
    units = {b["extra_info"].get("unit") for b in benches}
    if timers != {"process_time"} or units != {UNIT}:  # pytest-benchmark's name for the timer
        raise Missing(f"{base}: timed with {sorted(map(str, timers))} in "
                      f"{sorted(map(str, units))}, not time.process_time in {UNIT}; "
                      f"re-record it with `record`")
    limits = {} if fail_percent else thresholds(d)
    if note and not fail_percent:
        limits = {k: v + CROSS_CPU_PERCENT for k, v in limits.items()}
    fallback = fail_percent or max(limits.values())  # a benchmark new since `noise`
    groups: dict[int, list[str]] = {}
    for b in benches:
        groups.setdefault(limits.get(b["fullname"], fallback), []).append(b["fullname"])
    failed = []
    for n, nodes in sorted(groups.items()):
        progress(f"benchmark gate: {len(nodes)} benchmark(s) at min:{n}%")
        with tempfile.TemporaryDirectory(prefix="sao-bench-compare-") as tmp:
            ran = Path(tmp) / "ran.json"
            code = _run(pytest_cmd(preset, f"--benchmark-compare={base}",
                                   f"--benchmark-compare-fail=min:{n}%", f"--benchmark-json={ran}",
                                   nodes=tuple(nodes)), stdout)
            timed = ({b["fullname"] for b in json.loads(ran.read_text())["benchmarks"]}
                     if ran.is_file() else set())
        if code not in (0, 1):  # 1: a benchmark failed or regressed; the rest is no verdict
            raise RuntimeError(f"benchmark gate: pytest exited {code} on {base}'s benchmarks")
        # pytest-benchmark compares by full name and silently skips names it does not find:
        # a baseline entry that was not timed would read as a pass.
        if code == 0 and set(nodes) - timed:
            raise RuntimeError(f"benchmark gate: {sorted(set(nodes) - timed)} of {base} "
                               "were not timed, so not compared")
        if code != 0:
            failed.append(n)
    return {"passed": not failed, "baseline": str(base), "note": note,
            "fail_min_percent": {name: n for n, names in groups.items() for name in names},
            "failed_groups_percent": failed}


def noise(preset: str, runs_wanted: int, write: bool, cls: str | None = None) -> int:
    """Run the benchmarks K times; print each one's spread of min and the threshold tier it
    gives; with write, store them as threshold.json."""
    runs, loads = [], []
    with tempfile.TemporaryDirectory(prefix="sao-bench-noise-") as tmp:
        for k in range(runs_wanted):
            out = Path(tmp) / f"run{k}.json"
            la = load_average()
            loads.append(la and round(la[0], 2))
            if _run(pytest_cmd(preset, f"--benchmark-json={out}")) != 0:
                return 1
            runs.append(json.loads(out.read_text()))
    table = threshold_record(mins_of(runs), preset, loads, mins_of(runs, raw=True))
    print(f"{'benchmark':<40}{'spread of min':>14}{'N':>6}{'raw (s) spread':>16}   "
          f"min per run ({UNIT})")
    raw = table["raw_spread_of_min_percent"]
    for name, s in sorted(table["spread_of_min_percent"].items(), key=lambda kv: -kv[1]):
        print(f"{name.split('::')[-1]:<40}{s:>13.1f}%{table['fail_min_percent'][name]:>5}%"
              f"{raw.get(name, float('nan')):>15.1f}%   {table['min_per_run_s'][name]}")
    if write:
        path = class_dir(cls) / "threshold.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=2) + "\n")
        print(f"written: {path}")
    return 0
