"""One side of an A/B benchmark: times stages of whichever `harness` build is put first on the path.

Run by path, not as a module: `python ab_worker.py BUILD_ROOT CHECKPOINT STAGES [STAGE=FRACTION ...]`. BUILD_ROOT's `harness` package (a reference revision's tree, or the
candidate's) is imported, so this file uses only what every build has: `load_model` and
`bench.stages.build_stages`. It prints `ready`, then answers each stage name read from stdin
with one JSON line {"cpu": seconds of process CPU time, "wall": seconds}.

`STAGE=F` makes that stage really slower for the gate's own tests: after each call
it keeps the CPU busy until F x that call's CPU time has passed again (a delay proportional to
the stage's own time, which a CPU-time gate sees like any added work).
"""

import json
import sys
import time
from pathlib import Path


def _spin(cpu_seconds: float) -> None:
    end = time.process_time() + cpu_seconds
    x = 0
    while time.process_time() < end:
        x += 1


def main(argv: list[str]) -> int:
    root, checkpoint, names, *rest = argv
    slowdown = {stage: float(f) for stage, f in (spec.split("=") for spec in rest)}
    sys.path.insert(0, root)
    import harness

    if Path(harness.__file__).resolve().parents[1] != Path(root).resolve():
        print(f"ab_worker: imported {harness.__file__}, not the build at {root}", file=sys.stderr)
        return 3
    from harness.bench.stages import build_stages
    from harness.weights.load import load_model

    model, _ = load_model(checkpoint)
    stages = build_stages(model, tuple(names.split(",")))
    print("ready", flush=True)
    for line in sys.stdin:
        name = line.strip()
        fn = stages[name].fn
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        if name in slowdown:
            _spin((time.process_time() - c0) * slowdown[name])
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        print(json.dumps({"cpu": cpu, "wall": wall}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
