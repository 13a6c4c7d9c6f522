"""`sao-harness bench`: the table's JSON shape, peers that cannot run, bad input.

Timings are not asserted (speed is never a test assert); these check that the command
reports what it measured, and says why a peer row has no time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.bench.machine import machine_family
from suites.cli_util import assert_one_line_error, run_cli

QUICK = ("--config", "tiny", "--stages", "t5,vae_decode_short")


def run_env(*args, **env):
    p = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                       text=True, timeout=600, env={**os.environ, **env})
    return p.returncode, p.stdout, p.stderr


def test_json_rows_and_missing_reference_venv():
    """MLX rows are timed; with no reference venv the peer rows say so, and nothing fails."""
    code, out, err = run_env("bench", *QUICK, "--json",
                             SAO_REFERENCE_PYTHON="/nonexistent/refvenv/bin/python")
    assert code == 0, err
    result = json.loads(out)
    rows = result["rows"]
    assert [(r["stage"], r["impl"], r["config"]) for r in rows] == [
        ("t5", "mlx", "tiny"),
        ("vae_decode_short", "mlx", "tiny"), ("vae_decode_short", "torch", "tiny"),
        ("vae_decode_short", "litert", "tiny")]
    for r in rows[:2]:
        assert 0 < r["min_s"] <= r["median_s"], r
        assert r["rounds"] >= 1 and r["peak_mb"] > 0
    assert rows[1]["frames"] == 32
    for r in rows[2:]:
        assert r["min_s"] is None and "reference python not found" in r["note"], r
        assert "/nonexistent/refvenv/bin/python" in r["note"]
    assert result["machine_class"].startswith(f"{machine_family()}-")  # then the CPU
    assert result["machine_class"].split("core-", 1)[0].endswith(str(os.cpu_count()))
    assert "blas" in result


def test_table_text_names_stages_and_peer_note():
    code, out, err = run_env("bench", *QUICK, SAO_REFERENCE_PYTHON="/nonexistent/python")
    assert code == 0, err
    assert "MLX/peer" in out and "vae_decode_short" in out and "reference python not found" in out
    assert "blas" in out.lower()


@pytest.mark.parametrize("args, needle", [
    (("--stages", "t5,warp_drive"), "warp_drive"),
    (("--vae-frames", "0"), "--vae-frames"),
    (("--weights", "/nonexistent/ckpt"), "/nonexistent/ckpt"),
])
def test_bad_input_is_one_line(args, needle):
    assert_one_line_error(run_cli("bench", "--peers", "none", *args), needle)


@pytest.mark.reference
def test_peers_time_the_same_stage():
    """Needs the reference venv; LiteRT exports are cached in the user cache after a first run."""
    from harness.settings import reference_python
    from harness.errors import BadInput

    try:
        reference_python()
    except BadInput as e:
        pytest.skip(f"missing: {e}")
    res = run_cli("bench", "--config", "tiny", "--stages", "vae_decode_short", "--json",
                  timeout=1200)
    assert res.code == 0, res.err
    rows = {r["impl"]: r for r in json.loads(res.out)["rows"]}
    assert set(rows) == {"mlx", "torch", "litert"}
    for impl in ("torch", "litert"):
        assert rows[impl]["min_s"] > 0 and rows[impl]["frames"] == 32, rows[impl]
        assert rows[impl]["mlx_over_peer_min"] == pytest.approx(
            rows["mlx"]["min_s"] / rows[impl]["min_s"])
