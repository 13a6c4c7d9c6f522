"""Write the training clips for train.py: the real-music CALIBRATION clips of
harness.audio.corpus (never the TEST clips the audio suites measure on), 30 s each, as one
int16 .npz. Runs in the harness's own environment (the reference one has no soundfile).
`--set test` writes the held-out clips encode.py turns into the committed music latents.

    python tools/train_tiny/corpus.py --out clips.npz
    python tools/train_tiny/corpus.py --set test --only noiz2sa/stg1,openmsx/busy_schedule \
        --seconds 7.43 --out test.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.audio import corpus

SECONDS = 30.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", choices=("calibration", "test"), default="calibration")
    ap.add_argument("--only", default="", help="comma-separated source/stem names")
    ap.add_argument("--seconds", type=float, default=SECONDS)
    args = ap.parse_args()
    split = corpus.CALIBRATION if args.set == "calibration" else corpus.TEST
    if args.only:
        names = [n.split("/") for n in args.only.split(",")]
        split = {src: [stem for s, stem in names if s == src] for src in split}
    clips = corpus.clips(split, seconds=args.seconds)
    arrays = {c.name.replace("/", "__"): np.round(np.clip(c.audio, -1, 1) * 32767).astype(np.int16)
              for c in clips}
    tmp = args.out.with_suffix(".part.npz")
    np.savez(tmp, **arrays)
    tmp.replace(args.out)
    print(f"{len(arrays)} clips, {sum(a.shape[1] for a in arrays.values()) / 44100:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
