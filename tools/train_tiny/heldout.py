"""The held-out rows of tools/train_tiny/README.md for a trained checkpoint: decode its
encoder's latents of the held-out clips (encode.py's output) with the bundled MLX decoder and
check the audio against the original clips. Harness env:

    python tools/train_tiny/heldout.py --checkpoint trial/ckpt --latents trial_latents.npz

Prints one row per check (a `*` marks a failed one), one column per clip.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from harness.audio import corpus
from harness.audio.check import check_audio
from harness.weights.load import load_model

# The README's table: the absolute checks the decoder still fails, then how close it is.
ROWS = ("flicker_db", "comb_21hz_db", "comb_172hz_db", "comb_1378hz_db", "comb_5512hz_db",
        "level_difference_db", "dc_offset", "mrstft_distance", "logmel_distance_db",
        "channel_correlation", "envelope_correlation")


def main() -> int:
    import mlx.core as mx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--latents", type=Path, required=True, help="encode.py output")
    args = ap.parse_args()
    model, _ = load_model(args.checkpoint)
    lat = np.load(args.latents)
    cols = {}
    for key in sorted(lat.files):
        source, stem = key.split("__")
        z = lat[key][None]
        n = z.shape[-1] * 2048
        clip = corpus.load_clip(source, stem, n / 44100).audio[:, :n].astype(np.float32)
        audio = np.array(model.vae.decode(mx.array(z)).astype(mx.float32))[0]
        cols[key] = {c.name: c for c in check_audio(audio, 44100, reference=clip).checks}
    print(f"{'check':22s}", "  ".join(f"{k.split('__')[1]:>14s}" for k in cols))
    for row in ROWS:
        print(f"{row:22s}", "  ".join(f"{c[row].value:13.3f}{' ' if c[row].passed else '*'}"
                                      for c in cols.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
