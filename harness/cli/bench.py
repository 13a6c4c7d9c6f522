"""`sao-harness bench [--config tiny|full] [--json]`: stage x implementation latency table;
`sao-harness bench record|compare|noise`: the benchmark gate against stored baselines.

MLX stages run in this process; the peers (official PyTorch on CPU, LiteRT with XNNPACK,
both fp32) run on the same machine in the same invocation, on the same inputs, through the
reference venv (`harness.bench.peers`). Ratios are MLX time / peer time (> 1: MLX slower).
The table never fails on speed: regressions are `sao-harness bench compare` (CPU time in
calibration units against golden/benchmarks/<machine class>/, see its README).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.cli.options import add_device_argument
from harness.cli.output import emit
from harness.progress import progress
from harness.errors import BadInput


def _names(text: str, allowed, what: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise BadInput(None, f"--{what}: unknown {bad[0] if bad else 'empty list'!r}; "
                             f"choose from {','.join(allowed)}")
    return names


def register(sub) -> None:
    from harness.bench.plan import STAGES

    p = sub.add_parser("bench", help="latency of each stage: MLX vs official PyTorch and LiteRT")
    p.add_argument("--config", choices=("tiny", "full"), default="tiny",
                   help="seeded synthetic checkpoint preset (default: %(default)s)")
    p.add_argument("--weights", type=Path, default=None,
                   help="time this checkpoint dir (default: the seeded --config one)")
    p.add_argument("--stages", default=None,
                   help=f"comma-separated subset of {','.join(STAGES)} (default: all; for full, "
                        "all but vae_decode and generate at 256 frames, which take minutes)")
    p.add_argument("--vae-frames", type=int, default=None,
                   help="latent frames of the vae_decode stage (default 256)")
    p.add_argument("--peers", default="torch,litert",
                   help="peers to run: torch,litert, or 'none' (default: %(default)s)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="LiteRT export cache (default: $SAO_HARNESS_CACHE or "
                        "~/.cache/sao-harness, /litert-exports)")
    p.add_argument("--json", action="store_true", help="machine-readable table on stdout")
    add_device_argument(p)
    p.set_defaults(func=cmd_bench, inputs=("weights",))

    gate = p.add_subparsers(dest="bench_command", required=False, parser_class=type(p),
                            metavar="{record,compare,noise}",
                            help="the benchmark gate (without one: the latency table)")
    for name, fn, text in (
            ("record", cmd_record, "run the benchmarks, store them as this machine class's "
                                   "baseline"),
            ("compare", cmd_compare, "run them against the stored baseline; exit 1 on a "
                                     "regression"),
            ("noise", cmd_noise, "measure the run-to-run spread of min; thresholds from it")):
        s = gate.add_parser(name, help=text, description=text)
        s.add_argument("--config", choices=("tiny", "full"), default="tiny",
                       help="which benchmarks (the seeded checkpoint's preset)")
        s.add_argument("--machine-class", default=None,
                       help="baseline key (default: this machine's, `python -m "
                            "harness.bench.machine`)")
        if name == "compare":
            s.add_argument("--fail-percent", type=int, default=None,
                           help="one N for every benchmark (default: threshold.json's)")
            s.add_argument("--json", action="store_true",
                           help="verdict on stdout (pytest's output goes to stderr)")
        if name == "noise":
            s.add_argument("--runs", type=int, default=10, help="repeated runs")
            s.add_argument("--write", action="store_true", help="store the thresholds")
        s.set_defaults(func=fn)


def cmd_record(args) -> int:
    from harness.bench import baseline

    return baseline.record(args.config, args.machine_class)


def cmd_compare(args) -> int:
    from harness.bench import baseline

    result = baseline.compare(args.config, args.machine_class, args.fail_percent,
                              stdout=sys.stderr if args.json else None)
    if args.json:
        emit(args, result)
    else:
        failed = result["failed_groups_percent"]
        print(f"benchmark gate vs {result['baseline']}: " + ("pass" if not failed else
              f"FAIL in the min:{','.join(map(str, failed))}% group(s)"))
    return 0 if result["passed"] else 1


def cmd_noise(args) -> int:
    from harness.bench import baseline

    return baseline.noise(args.config, args.runs, args.write, args.machine_class)


# Full-size stages left out by default: at 256 frames the MLX decode alone takes minutes here.
FULL_SLOW = ("vae_decode", "generate")


def default_stages(preset: str) -> list[str]:
    from harness.bench.plan import STAGES

    return [s for s in STAGES if preset == "tiny" or s not in FULL_SLOW]


def ratios(rows: list[dict]) -> None:
    """Add mlx_over_peer_{min,median} to each peer row that has an MLX row of its stage."""
    mlx = {r["stage"]: r for r in rows if r["impl"] == "mlx" and r["min_s"]}
    for r in rows:
        m = mlx.get(r["stage"])
        if r["impl"] != "mlx" and m and r["min_s"]:
            r["mlx_over_peer_min"] = m["min_s"] / r["min_s"]
            r["mlx_over_peer_median"] = m["median_s"] / r["median_s"]


def format_table(rows: list[dict]) -> str:
    head = (f"{'stage':<17}{'frames':>7}  {'impl':<7}{'min s':>10}{'median s':>10}{'rounds':>7}"
            f"{'MLX/peer min':>14}{'median':>8}{'peak MB':>9}")
    out = [head, "-" * len(head)]
    for r in rows:
        frames = "-" if r.get("frames") is None else str(r["frames"])
        if r["min_s"] is None:
            out.append(f"{r['stage']:<17}{frames:>7}  {r['impl']:<7}  {r['note']}")
            continue
        ratio = ""
        if "mlx_over_peer_min" in r:
            ratio = f"{r['mlx_over_peer_min']:>13.2f}x{r['mlx_over_peer_median']:>7.2f}x"
        ratio = ratio or " " * 22
        peak = "" if r.get("peak_mb") is None else f"{r['peak_mb']:>9.0f}"
        out.append(f"{r['stage']:<17}{frames:>7}  {r['impl']:<7}{r['min_s']:>10.4f}"
                   f"{r['median_s']:>10.4f}{r['rounds']:>7}{ratio}{peak}")
    return "\n".join(out)


def cmd_bench(args) -> int:
    from harness.bench.machine import load_average, machine_class
    from harness.bench.peers import PEER_IMPLS, peer_rows
    from harness.bench.runner import max_rss_mb
    from harness.bench.plan import PEER_STAGES, STAGES, VAE_FRAMES, stage_frames
    from harness.blas import blas_advice
    from harness.provenance import provenance
    from harness.weights.load import load_model, open_checkpoint
    from harness.weights.synth import default_checkpoint

    stages = _names(args.stages, STAGES, "stages") if args.stages else None
    impls = [] if args.peers == "none" else _names(args.peers, PEER_IMPLS, "peers")
    vae_frames = VAE_FRAMES if args.vae_frames is None else args.vae_frames
    if vae_frames < 1:
        raise BadInput(None, f"--vae-frames must be >= 1, got {vae_frames}")
    load_before = load_average()
    ckpt = open_checkpoint(args.weights or default_checkpoint(args.config))
    preset = ckpt.config.preset
    stages = stages or default_stages(preset)
    frames = {s: stage_frames(s, ckpt.config, vae_frames) for s in stages}
    # Peers first, in their own process: the full-size torch model plus a LiteRT export need
    # several GB, which this process must not be holding at the same time.
    peer, info = peer_rows(ckpt.root, preset, [s for s in stages if s in PEER_STAGES], frames,
                           vae_frames, args.cache_dir, impls, progress=not args.json)
    rows = [r.as_dict() for r in peer]

    from harness.bench.stages import build_stages, measure

    model, _ = load_model(ckpt.model_file)
    for name, stage in build_stages(model, stages, vae_frames).items():
        progress(f"bench: mlx {name}")
        rows.append(measure(stage, preset).as_dict())
    order = {(s, i): n for n, (s, i) in enumerate(
        (s, i) for s in STAGES for i in ("mlx", *PEER_IMPLS))}
    rows = sorted(rows, key=lambda r: order[r["stage"], r["impl"]])
    ratios(rows)
    skipped = [] if args.stages else [s for s in STAGES if s not in stages]
    result = {"rows": rows, "config": preset, "checkpoint": str(ckpt.root), "skipped": skipped,
              "machine_class": machine_class(), "cpu_count": os.cpu_count(),
              "load_average_before": load_before, "load_average_after": load_average(),
              "blas": blas_advice(), "peers": info, "mlx_max_rss_mb": round(max_rss_mb(), 1),
              "provenance": provenance()}
    if args.json:
        emit(args, result, passed=True)
        return 0
    print(f"sao-harness bench: {preset} checkpoint {ckpt.root}, machine class "
          f"{result['machine_class']}, load average before/after "
          f"{_load(load_before)} / {_load(result['load_average_after'])}")
    if info.get("threads"):
        print(f"peers: torch {info['threads']['torch']} threads, LiteRT XNNPACK fp32 "
              f"{info['threads']['litert']} threads ({', '.join(f'{k} {v}' for k, v in info['versions'].items())})")
    print(format_table(rows))
    print(f"peak MB: MLX allocator's peak during the stage, weights included; MLX process max "
          f"RSS {result['mlx_max_rss_mb']:.0f} MB")
    diffs = [f"{r['stage']} {r['extra']['max_abs_diff_vs_torch_rel']:.1e}" for r in rows
             if "max_abs_diff_vs_torch_rel" in r.get("extra", {})]
    if diffs:
        print("LiteRT output vs torch on the same inputs, max |diff| / max |torch|: "
              + ", ".join(diffs))
    if skipped:
        print(f"not run by default for {preset}: {', '.join(skipped)} (minutes each at "
              f"{VAE_FRAMES} frames; add them with --stages)")
    print(f"note: {result['blas']}" if result["blas"] else "blas: OpenBLAS loaded")
    return 0


def _load(la) -> str:
    return "n/a" if la is None else f"{la[0]:.2f}"
