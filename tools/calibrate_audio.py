"""Measure every metric on the CALIBRATION clips (never the test clips): clean, benign variants
and each fault at its nominal depth. The numbers justify thresholds.toml.

    python tools/calibrate_audio.py [--split test] > calibration.txt
"""

from __future__ import annotations

import argparse

import numpy as np

from harness.audio import corpus, survey

HIGHER_IS_WORSE = None  # direction comes from the threshold: "max" bound = higher is worse


def measure(split):
    rows = {}  # (variant, metric) -> list of values
    for (clip, name), report in survey.survey(corpus.clips(split)).items():
        for c in report.checks:
            rows.setdefault((name, c.name), []).append((clip, c.value))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["calibration", "test"], default="calibration")
    args = ap.parse_args()
    split = corpus.CALIBRATION if args.split == "calibration" else corpus.TEST
    rows = measure(split)
    variants = sorted({v for v, _ in rows}, key=lambda v: (v != "clean", v.startswith("benign"), v))
    metrics = list(dict.fromkeys(mt for _, mt in rows))
    for mt in metrics:
        print(f"\n## {mt}")
        for v in variants:
            vals = rows.get((v, mt))
            if not vals:
                continue
            arr = np.array([val for _, val in vals])
            lo, hi = vals[int(np.argmin(arr))], vals[int(np.argmax(arr))]
            print(f"  {v:24s} min {lo[1]:10.4g} ({lo[0]:28s}) max {hi[1]:10.4g} ({hi[0]})")


if __name__ == "__main__":
    main()
