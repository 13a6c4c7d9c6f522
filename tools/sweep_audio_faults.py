"""Weakest depth of each fault that its intended check still flags on every clip of a split.

    python tools/sweep_audio_faults.py [--split calibration|test]

Depths go from the nominal one toward weaker; the sweep stops at the first depth missed on
any clip and prints the last depth caught everywhere (the number quoted in the report).
"""

from __future__ import annotations

import argparse

from harness.audio import check, corpus, faults, metrics
from harness.audio.faults import INTENDED

GRIDS = {
    "lowpass_4k": [4000, 6000, 8000, 9000, 10000, 10500, 11000, 11500, 12000, 13000],
    "lowpass_8k": [8000, 9000, 10000, 10500, 11000, 11500, 12000, 13000],
    "am_21hz": [0.3, 0.25, 0.2, 0.18, 0.16, 0.14, 0.12, 0.1, 0.08],
    **{f"comb_{r}": [-30, -31, -32, -33, -34, -35, -36, -38, -40, -45, -50]
       for r in ("21hz", "172hz", "1378hz", "5512hz")},
    **{f"seams_{p}": [0, -3, -6, -8, -10, -12, -15, -20] for p in (8192, 65536, 30011)},
    "clipping": [0.01, 0.003, 0.001, 0.0007, 0.0005, 0.0003, 0.0002, 0.0001],
    "dc_offset": [0.05, 0.04, 0.03, 0.025, 0.022, 0.02, 0.018, 0.015],
    "level_minus_6db": [-6, -4, -3, -2, -1.75, -1.6, -1.5, -1.4, -1.25],
}


def flagged(name, y, ref, limits, sr=44100):
    s = metrics.Signal(y, sr)
    value = check.FREE[name](s) if name in check.FREE else check.RELATIVE[name](s, ref)
    bounds = limits[name]
    return not (bounds.get("min", -1e300) <= value <= bounds.get("max", 1e300)), value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["calibration", "test"], default="test")
    args = ap.parse_args()
    clips = corpus.clips(corpus.TEST if args.split == "test" else corpus.CALIBRATION)
    refs = [check.reference_signal(c.audio, c.sr) for c in clips]
    limits = check.thresholds()
    for fault, grid in GRIDS.items():
        unit = faults.FAULTS[fault][2]
        weakest = None
        for depth in grid:
            caught = all(flagged(name, faults.apply(fault, c.audio, c.sr, depth), r, limits)[0]
                         for c, r in zip(clips, refs) for name in INTENDED[fault])
            if not caught:
                break
            weakest = depth
        print(f"{fault:16s} weakest depth caught on all {len(clips)} clips: {weakest} ({unit}); "
              f"first missed: {depth if not caught else 'none in grid'}", flush=True)


if __name__ == "__main__":
    main()
