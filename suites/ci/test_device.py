"""--device: a device the machine lacks is exit 2 with one line (CLI and pytest), --device cpu
changes nothing, and a non-CPU device gets its own tolerance policy: provisional (CPU floors
minus the documented allowance, labelled so) until `golden calibrate` has measured it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.golden import tolerances
from harness.golden.calibrate import proposed_table
from harness.golden.tolerances import (FP32_TINY, UNCALIBRATED_ALLOWANCE_DB, device_table,
                                        floor_for, policy_for)
from harness.cli import main
from harness.device import ENV, available
from suites.cli_util import Result, assert_one_line_error, run_cli

needs_no_gpu = pytest.mark.skipif(available("gpu"), reason="this machine has a GPU: "
                                                           "--device gpu is valid here")

MODEL_COMMANDS = [
    ["generate", "--out", "{tmp}/x.wav"],
    ["compare", "--case", "tiny-torch"],
    ["bench", "--peers", "none", "--stages", "t5"],
    ["gate", "{ckpt}"],
    ["mutants", "run", "--only", "qk_norm_eps"],
    ["golden", "calibrate", "--case", "tiny-torch", "--out", "{tmp}/f.json"],
]


@needs_no_gpu
@pytest.mark.parametrize("argv", MODEL_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_missing_gpu_is_one_line_exit_2(argv, tmp_path, tiny_checkpoint, capsys, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    argv = [a.format(tmp=tmp_path, ckpt=tiny_checkpoint) for a in argv]
    code = main([*argv, "--device", "gpu"])
    err = capsys.readouterr().err
    assert_one_line_error(Result(code, "", err), "--device gpu", "GPU")
    assert list(tmp_path.iterdir()) == []  # nothing written


@needs_no_gpu
def test_missing_gpu_console_script(tmp_path):
    assert_one_line_error(run_cli("generate", "--out", tmp_path / "x.wav", "--device", "gpu"),
                          "--device gpu", "GPU")


@needs_no_gpu
def test_pytest_device_gpu_exits_2_with_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pytest", "suites/golden/test_compare_metrics.py",
                        "-q", "-p", "no:cacheprovider", "--device", "gpu"],
                       capture_output=True, text=True, timeout=120,
                       cwd=tolerances.__file__.rsplit("/harness/", 1)[0])
    assert p.returncode == 2, p.stdout + p.stderr
    lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    assert len(lines) == 1 and "--device gpu" in lines[0] and "Traceback" not in p.stderr


def _run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().out


def test_device_cpu_gives_unchanged_results(tmp_path, capsys):
    (c1, default), (c2, cpu) = (_run(capsys, "compare", "--case", "tiny-torch", "--json", *extra)
                                for extra in ((), ("--device", "cpu")))
    assert c1 == c2 == 0
    default, cpu = json.loads(default), json.loads(cpu)
    assert default["provenance"]["device"] == cpu["provenance"]["device"] == "cpu"
    assert default["cases"] == cpu["cases"]  # every metric of every tensor, equal
    wavs = [tmp_path / "default.wav", tmp_path / "cpu.wav"]
    assert _run(capsys, "generate", "--prompt-ids", "5,6,7,1", "--out", wavs[0])[0] == 0
    assert _run(capsys, "generate", "--prompt-ids", "5,6,7,1", "--out", wavs[1],
                "--device", "cpu")[0] == 0
    import soundfile as sf  # (the WAV's PEAK chunk holds a timestamp: compare the samples)
    a, b = (sf.read(w, dtype="float32")[0] for w in wavs)
    assert a.shape == b.shape and (a == b).all()


def test_cpu_policy_is_the_committed_one():
    assert policy_for("torch", "fp32", "tiny", device="cpu") is tolerances.POLICIES[
        ("torch", "fp32", "tiny")]


def test_uncalibrated_device_gets_cpu_floors_minus_allowance_and_says_so(tmp_path):
    p = policy_for("torch", "fp32", "tiny", device="metal-test")
    assert not p.calibrated and p.device == "metal-test"
    assert "NOT CALIBRATED" in p.label and f"{UNCALIBRATED_ALLOWANCE_DB:g} dB" in p.label
    for g, t in FP32_TINY.items():
        assert p.groups[g].snr_db == t.snr_db - UNCALIBRATED_ALLOWANCE_DB


def test_margin_rule():
    # worst - >= 10 dB, rounded down to a multiple of 5: the committed floors follow it
    assert floor_for(123.9) == 110 and floor_for(111.4) == 100 and floor_for(87.4) == 75
    assert floor_for(95.0) == 85 and floor_for(94.99) == 80
    for t in FP32_TINY.values():
        assert t.snr_db <= floor_for(t.measured_db)


def test_calibrate_on_cpu_proposes_floors_the_committed_ones_stay_under(tmp_path, monkeypatch,
                                                                         capsys):
    """`golden calibrate --device cpu` re-measures what the committed tiny floors were set
    from; each committed floor must be <= the proposed one (they also took torch vs LiteRT
    into their minimum). The written table, committed as a device table, is what a run on
    that device then uses."""
    out = tmp_path / "floors.json"
    assert main(["golden", "calibrate", "--device", "cpu", "--case", "tiny-torch",
                 "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["device"] == "cpu" and table["provenance"]["device"] == "cpu"
    groups = table["policies"]["torch/fp32/tiny"]
    assert set(groups) == set(FP32_TINY)
    for g, v in groups.items():
        assert v["floor_db"] == floor_for(v["worst_snr_db"]) <= v["worst_snr_db"] - 10
        assert FP32_TINY[g].snr_db <= v["floor_db"], (g, v)
        assert v["tensor"] and v["case"] == "tiny-torch"
    # committed as a device's table, it replaces the provisional floors
    (tmp_path / "metal-test.json").write_text(out.read_text())
    monkeypatch.setattr(tolerances, "DEVICE_FLOORS_DIR", tmp_path)
    device_table.cache_clear()
    try:
        assert device_table("metal-test", tmp_path)["torch/fp32/tiny"]["vae"].snr_db == \
            groups["vae"]["floor_db"]
    finally:
        device_table.cache_clear()


def test_proposed_table_marks_nonfinite_worst():
    t = proposed_table({"torch/fp32/tiny": {"vae": {"worst_snr_db": float("nan"), "tensor": "x",
                                                    "case": "c"}}}, "gpu", "fp32", {})
    assert t["policies"]["torch/fp32/tiny"]["vae"]["floor_db"] is None


def test_snake_cpu_streams_only_on_the_cpu(monkeypatch):
    """The VAE snakes are split over CPU streams only when the CPU computes; on the GPU they
    run whole on its stream (a CPU stream there would move the work off the GPU)."""
    import mlx.core as mx

    from harness.model import fastmath

    x = mx.ones((1, fastmath.PARALLEL_MIN_ELEMENTS // 4 + 8, 8))
    calls = []
    fn = lambda a, *s: calls.append(a.shape) or a
    monkeypatch.setattr(fastmath, "_cpu_cores", lambda: 2)
    fastmath.on_cpu_streams(fn, x)
    assert len(calls) == 2  # cut in two along time on the CPU
    calls.clear()
    monkeypatch.setattr(fastmath.mx, "default_device", lambda: mx.Device(mx.gpu, 0))
    fastmath.on_cpu_streams(fn, x)
    assert calls == [x.shape]
