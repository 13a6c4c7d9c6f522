"""Evidence for the A/B benchmark gate (harness/bench/ab.py): unmodified runs pass, a 30% slowdown is caught.

Each `run` is one A/B session with three workers interleaved pair by pair: the reference
revision's build, this checkout unmodified ("clean"), and this checkout with every stage made
30% slower ("slow": after each call the worker burns CPU for 0.3 x that call's CPU time; the
stages are timed one after another, so each stage's ratio sees only its own slowdown). One
JSON line per run is appended to OUT, with the load average before and after. Run it once per
invocation under the machine's heavy-job lock, so the lock is released between runs:

    for i in $(seq 10); do flock LOCK python tools/bench_gate/evidence.py run OUT.jsonl; done
    python tools/bench_gate/evidence.py summary OUT.jsonl [--write]

`summary` prints, per stage, the clean and slow median ratios over the runs, the threshold N
(FLOOR_PERCENT, raised to MARGIN x the largest clean deviation when that is more), how many
clean runs were false alarms and how many slow runs were caught; `--write` stores N and the
measurement in golden/benchmarks/<machine class>/ab_threshold.json. N fitted on the runs it
is judged on cannot show a false alarm there, so fit it on another set: `summary EVAL.jsonl
--fit FIT.jsonl` takes N from FIT's clean runs and counts verdicts on EVAL's.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from harness.bench import ab
from harness.bench.baseline import class_dir
from harness.bench.plan import STAGES
from harness.weights.synth import default_checkpoint


def cmd_run(args) -> int:
    stages = tuple(args.stages.split(","))
    ckpt = default_checkpoint("tiny")
    with ab.reference_tree(args.reference) as ref:
        rec = ab.session(ab.REPO, ref, ckpt, stages,
                         {"clean": {}, "slow": {s: args.slowdown for s in stages}},
                         log=lambda m: print(m, file=sys.stderr, flush=True))
    rec.update(reference=args.reference, slowdown=args.slowdown,
               at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    with open(args.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return 0


def _load(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def cmd_summary(args) -> int:
    runs = _load(args.out)
    fit = _load(args.fit) if args.fit else runs
    stages = [s for s in STAGES if all(s in r["median_ratio"]["clean"] for r in runs + fit)]
    clean = {s: [r["median_ratio"]["clean"][s] for r in runs] for s in stages}
    slow = {s: [r["median_ratio"]["slow"][s] for r in runs] for s in stages}
    fit_dev = {s: max(abs(r["median_ratio"]["clean"][s] - 1) for r in fit) for s in stages}
    limits = {s: ab.tier(fit_dev[s]) for s in stages}
    loads = [r["load_average_before"][0] for r in runs] + [r["load_average_after"][0] for r in runs]
    fitted = (f"fitted on the {len(fit)} runs of {Path(args.fit).name}, not these" if args.fit
              else "fitted on these same runs: its zero false alarms is the margin, not a test")
    print(f"{len(runs)} runs {runs[0]['at']} - {runs[-1]['at']}, load average (1 min) "
          f"{min(loads):.1f}-{max(loads):.1f}, slowdown injected {runs[0]['slowdown']:.0%}, "
          f"{min(r['seconds'] for r in runs):.0f}-{max(r['seconds'] for r in runs):.0f} s "
          f"per run; verdicts at the fixed N = {ab.FLOOR_PERCENT}% (chosen before any run) "
          f"and at the noise model's N (MARGIN x the largest clean deviation, {fitted})\n")
    print("| stage | pairs | clean ratio (min-max) | max clean deviation | slow ratio (min-max) | "
          f"false alarms / caught at {ab.FLOOR_PERCENT}% | noise-model N | "
          "false alarms / caught at it |")
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for s in stages:
        row = []
        for n in (ab.FLOOR_PERCENT, limits[s]):
            fa = sum(x - 1 > n / 100 for x in clean[s])
            caught = sum(x - 1 > n / 100 for x in slow[s])
            ok &= fa == 0 and caught == len(runs)
            row.append(f"{fa}/{len(runs)} / {caught}/{len(runs)}")
        pairs = sorted({r["pairs"][s] for r in runs})
        dev = max(abs(x - 1) for x in clean[s])
        print(f"| {s} | {pairs[0]}-{pairs[-1]} | {min(clean[s]):.3f}-{max(clean[s]):.3f} | "
              f"{dev:.1%} | {min(slow[s]):.3f}-{max(slow[s]):.3f} | {row[0]} | {limits[s]}% | "
              f"{row[1]} |")
    if args.write:
        path = class_dir() / ab.THRESHOLD_FILE
        path.write_text(json.dumps({
            "fail_percent": limits, "margin": ab.MARGIN, "floor_percent": ab.FLOOR_PERCENT,
            "fit": {"runs": len(fit), "measured": [fit[0]["at"], fit[-1]["at"]],
                    "max_clean_deviation": {s: round(d, 4) for s, d in fit_dev.items()}},
            "evaluation": {"runs": len(runs), "measured": [runs[0]["at"], runs[-1]["at"]],
                           "independent_of_fit": bool(args.fit),
                           "clean_median_ratio_per_run": clean,
                           "slow_median_ratio_per_run": slow,
                           "load_average_1min": [[r["load_average_before"][0],
                                                  r["load_average_after"][0]] for r in runs]},
            "slowdown": runs[0]["slowdown"]}, indent=2) + "\n")
        print(f"\nwritten: {path}")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out")
    r.add_argument("--reference", default="HEAD", help="git revision of the reference build")
    r.add_argument("--stages", default=",".join(STAGES))
    r.add_argument("--slowdown", type=float, default=0.3)
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("summary")
    s.add_argument("out", help="runs to evaluate")
    s.add_argument("--fit", default=None,
                   help="fit the noise-model N on these runs instead (a separate set)")
    s.add_argument("--write", action="store_true")
    s.set_defaults(func=cmd_summary)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
