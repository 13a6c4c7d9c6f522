"""Plot train.py's loss.csv (VAE and DiT phases side by side) to loss.png beside it.

    python tools/train_tiny/plot_loss.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent


def main() -> int:
    rows = list(csv.DictReader(open(HERE / "loss.csv")))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    for ax, phase, title in zip(axes, ("vae", "dit"),
                                ("VAE: MR-STFT + L1 + 1e-4 KL", "DiT: rectified-flow MSE")):
        r = [x for x in rows if x["phase"] == phase]
        steps = [int(x["step"]) for x in r]
        ax.plot(steps, [float(x["loss"]) for x in r], lw=0.6, color="0.6", label="loss")
        k = 25  # running mean: single steps of batch 2 are noisy
        loss = [float(x["loss"]) for x in r]
        smooth = [sum(loss[max(0, i - k + 1):i + 1]) / len(loss[max(0, i - k + 1):i + 1])
                  for i in range(len(loss))]
        ax.plot(steps, smooth, lw=1.2, color="C0", label=f"mean of {k}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "loss.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
