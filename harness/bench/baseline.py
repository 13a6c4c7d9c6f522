"""`python -m harness.bench.baseline record|compare|noise`: stored pytest-benchmark baselines.

Baselines live in golden/benchmarks/<machine class>/<preset>.json (pytest-benchmark's own
JSON, written with --benchmark-json). `compare` re-runs the benchmarks with
--benchmark-compare=<that file> --benchmark-compare-fail=min:<N>%, N from the class's
threshold.json, which `noise` writes from K repeated runs: N is the largest run-to-run
spread of any benchmark's min seen there, times a margin. Only `min` is gated: it is the
statistic least disturbed by other processes on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from harness.bench.machine import load_average, machine_class

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "golden" / "benchmarks"
BENCH_FILE = "suites/bench/test_bench_stages.py"
MARGIN = 1.5          # N = MARGIN x the largest spread of min measured by `noise`
MIN_THRESHOLD = 10    # percent; never gate tighter than this


def class_dir(cls: str | None = None) -> Path:
    return ROOT / (cls or machine_class())


def pytest_cmd(preset: str, *extra: str) -> list[str]:
    marker = "bench and full" if preset == "full" else "bench and not full"
    return [sys.executable, "-m", "pytest", BENCH_FILE, "-m", marker, "--benchmark-enable",
            "-p", "no:cacheprovider", "-q", "--benchmark-columns=min,median,max,rounds",
            *extra]


def _run(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=REPO).returncode


def threshold(cls_dir: Path) -> int:
    path = cls_dir / "threshold.json"
    if not path.is_file():
        raise SystemExit(f"baseline: no {path}: run `python -m harness.bench.baseline noise "
                         f"--write` on this machine class first")
    return int(json.loads(path.read_text())["fail_min_percent"])


def min_spread(runs: list[dict]) -> dict[str, float]:
    """Benchmark -> max/min - 1 of its `min` over runs: the largest slowdown an unchanged
    model showed between two runs (what a baseline comparison would call a regression)."""
    mins: dict[str, list[float]] = {}
    for run in runs:
        for b in run["benchmarks"]:
            mins.setdefault(b["fullname"], []).append(b["stats"]["min"])
    return {name: max(v) / min(v) - 1 for name, v in mins.items() if len(v) == len(runs)}


def suggest(spreads: dict[str, float]) -> int:
    worst = max(spreads.values(), default=0.0)
    return max(MIN_THRESHOLD, int(math.ceil(worst * MARGIN * 100 / 5.0)) * 5)


def cmd_record(args) -> int:
    out = class_dir(args.machine_class) / f"{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    code = _run(pytest_cmd(args.preset, f"--benchmark-json={out}"))
    if code == 0:
        print(f"baseline written: {out}")
    return code


def cmd_compare(args) -> int:
    d = class_dir(args.machine_class)
    base = d / f"{args.preset}.json"
    if not base.is_file():
        raise SystemExit(f"baseline: no baseline {base}: record one with "
                         f"`python -m harness.bench.baseline record --preset {args.preset}`")
    n = args.fail_percent or threshold(d)
    return _run(pytest_cmd(args.preset, f"--benchmark-compare={base}",
                           f"--benchmark-compare-fail=min:{n}%"))


def cmd_noise(args) -> int:
    runs, loads = [], []
    with tempfile.TemporaryDirectory(prefix="sao-bench-noise-") as tmp:
        for k in range(args.runs):
            out = Path(tmp) / f"run{k}.json"
            loads.append(load_average())
            if _run(pytest_cmd(args.preset, f"--benchmark-json={out}")) != 0:
                return 1
            runs.append(json.loads(out.read_text()))
    spreads = min_spread(runs)
    n = suggest(spreads)
    mins = {b["fullname"]: [] for b in runs[0]["benchmarks"]}
    for run in runs:
        for b in run["benchmarks"]:
            mins[b["fullname"]].append(round(b["stats"]["min"], 6))
    print(f"{'benchmark':<45}{'spread of min':>14}   min per run (s)")
    for name, s in sorted(spreads.items(), key=lambda kv: -kv[1]):
        print(f"{name.split('::')[-1]:<45}{s * 100:>13.1f}%   {mins[name]}")
    print(f"suggested --benchmark-compare-fail=min:{n}% "
          f"(largest spread x {MARGIN}, rounded up to 5%, at least {MIN_THRESHOLD}%)")
    if args.write:
        path = class_dir(args.machine_class) / "threshold.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"fail_min_percent": n, "preset": args.preset, "runs": args.runs,
                  "margin": MARGIN, "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "cpu_count": os.cpu_count(),
                  "load_average_1min_before_each_run": [l and round(l[0], 2) for l in loads],
                  "spread_of_min_percent": {k.split("::")[-1]: round(v * 100, 1)
                                            for k, v in spreads.items()},
                  "min_per_run_s": {k.split("::")[-1]: v for k, v in mins.items()}}
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"written: {path}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.baseline", description=__doc__.splitlines()[0])
    p.add_argument("--machine-class", default=None, help="default: this machine's (harness.bench.machine)")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, fn, text in (("record", cmd_record, "run the benchmarks, store them as the baseline"),
                           ("compare", cmd_compare, "run them against the stored baseline; exit 1 on a regression"),
                           ("noise", cmd_noise, "measure run-to-run spread of min, suggest N")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--preset", choices=("tiny", "full"), default="tiny")
        s.set_defaults(func=fn)
        if name == "compare":
            s.add_argument("--fail-percent", type=int, default=None,
                           help="override N (default: the class's threshold.json)")
        if name == "noise":
            s.add_argument("--runs", type=int, default=5)
            s.add_argument("--write", action="store_true", help="store N in threshold.json")
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
