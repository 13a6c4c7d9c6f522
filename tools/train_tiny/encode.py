"""Encode held-out real music with the trained encoder (official stable-audio-tools code):
the latents `suites/model/test_tiny_trained_weights.py` decodes with the bundled MLX decoder.

Runs in the reference environment, on corpus.py's `--set test` output:

    python tools/train_tiny/encode.py --checkpoint harness/weights/data/tiny-trained \\
        --clips test.npz --out suites/model/data/tiny_trained_music_latents.npz

Each latent is the bottleneck's mean (no sampling noise), what the decoder was trained to
invert. Clip names keep corpus.py's `source__stem` keys.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("ENABLE_TORCH_COMPILE", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from harness.reference.build import load_reference  # noqa: E402


@torch.no_grad()
def encode_mean(ae, audio: np.ndarray) -> np.ndarray:
    """(2, N) float32 -> (latent_dim, N // ratio): the encoder's mean half."""
    ratio = ae.downsampling_ratio
    n = audio.shape[-1] // ratio * ratio
    h = ae.encoder(torch.from_numpy(np.ascontiguousarray(audio[None, :, :n])))
    return h[0, : h.shape[1] // 2].numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--clips", type=Path, required=True, help="corpus.py --set test output")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_reference(args.checkpoint)
    ae = model.pretransform.model
    data = np.load(args.clips)
    latents = {k: encode_mean(ae, data[k].astype(np.float32) / 32767) for k in sorted(data.files)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **latents)
    print(", ".join(f"{k} {v.shape}" for k, v in latents.items()), "->", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
