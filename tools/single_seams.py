"""One seam (a decode in two chunks, stitched without overlap) at 19 latent frame boundaries
(0.05, 0.10 .. 0.95 of the clip, rounded down to a multiple of 2048 samples) of every clip of a
corpus split: which of seam_db and frame_seam_db flag it. The numbers behind thresholds.toml's
single-seam lines.

    python tools/single_seams.py [--split test]
"""

from __future__ import annotations

import argparse

import numpy as np

from harness.audio import check, corpus, faults, metrics

HOP = metrics.STRIDE_PERIODS["21hz"]
CHECKS = ("seam_db", "frame_seam_db")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=["calibration", "test"], default="calibration")
    split = corpus.CALIBRATION if ap.parse_args().split == "calibration" else corpus.TEST
    limits = {c: check.thresholds()[c]["max"] for c in CHECKS}
    total = dict.fromkeys(CHECKS + ("either",), 0)
    cases = 0
    for clip in corpus.clips(split):
        n = clip.audio.shape[1]
        vals = np.array([[getattr(metrics, c)(faults.seams(clip.audio, clip.sr, at=[k])) for c in CHECKS]
                         for k in (int(n * f) // HOP * HOP for f in np.arange(1, 20) / 20)])
        hit = vals > np.array([limits[c] for c in CHECKS])
        cases += len(vals)
        for i, c in enumerate(CHECKS):
            total[c] += int(hit[:, i].sum())
        total["either"] += int(hit.any(axis=1).sum())
        print(f"{clip.name:32s} " + "  ".join(
            f"{c} min {vals[:, i].min():5.1f} flagged {hit[:, i].sum():2d}/19" for i, c in enumerate(CHECKS))
            + f"  either {hit.any(axis=1).sum():2d}/19", flush=True)
    print("total " + ", ".join(f"{k} {v}/{cases}" for k, v in total.items()))


if __name__ == "__main__":
    main()
