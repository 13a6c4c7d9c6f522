"""Measure the drift that re-encodings and corruptions cause, per stage (not a test).

    python -m tools.calibrate_gate_drift [--preset tiny|full] [--frames N]   # from the checkout

For each variant of a seeded checkpoint it prints the lowest SNR (dB) per drift stage
against the approved checkpoint. The `--expect same` thresholds in
harness/gate/drift_tolerances.toml were set from these numbers (see the comments there).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness.gate import drift
from harness.weights.load import load_model
from harness.weights.synth import write_checkpoint
from suites.gate import gate_variants as gv  # the gate tests' variants, measured here


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=("tiny", "full"))
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--corruptions", action="store_true", help="also the corruptions")
    ap.add_argument("--only", nargs="*", default=None, help="only these variants")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="calib-"))
    base = write_checkpoint(args.preset, 0, tmp / "base")
    variants = {"fp16-dit": gv.fp16_dit, "bf16-dit": gv.bf16_dit, "fp32-vae": gv.fp32_vae,
                "fp16-cond+t5": gv.fp16_conditioning, "vae-fp32-orig": gv.vae_fp32_original,
                "reparam-vae": gv.reparam_vae, "bf16-cond+t5": gv.bf16_conditioning,
                "bf16-vae": gv.bf16_vae,
                "reversed-keys": gv.reversed_keys, "same-again": None}
    if args.corruptions:
        other = write_checkpoint(args.preset, 1, tmp / "other")
        variants.update({"transposed": gv.transposed, "qk-swapped": gv.qk_swapped,
                         "scaled-1.25": gv.scaled, "scaled-1.01": lambda s, d: gv.scaled(s, d, 1.01),
                         "foreign": lambda s, d: gv.foreign_tensor(s, d, other),
                         "weight-g-dim": gv.weight_g_wrong_dim, "seed1": None})
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only}
    model, ckpt = load_model(base)
    frames = args.frames or drift.default_frames(ckpt.config)
    probe = drift.make_probe(ckpt.config, ckpt.spiece, frames)
    t0 = time.perf_counter()
    ref = drift.run_probes(model, probe)
    print(f"{args.preset}: frames {frames}, one probe run {time.perf_counter() - t0:.1f} s")
    del model
    print(f"{'variant':<14}" + "".join(f"{s:>13}" for s in drift.STAGES) + "   worst module")
    for name, make in variants.items():
        if name == "same-again":
            path = base
        elif name == "seed1":
            path = tmp / "other"
        else:
            path = make(base, tmp / name)
        m, _ = load_model(path)
        out = drift.run_probes(m, probe, ref)
        rows = drift.compare(out, ref, None)
        worst = {s: min(r.snr_db for r in rows if r.stage == s) for s in drift.STAGES}
        mods = drift.module_snr(out, ref)
        wm = min(mods, key=lambda x: x[1]) if mods else ("-", float("inf"))
        print(f"{name:<14}" + "".join(f"{worst[s]:>13.2f}" for s in drift.STAGES)
              + f"   {wm[0]} {wm[1]:.1f}")
        del m


if __name__ == "__main__":
    main()
