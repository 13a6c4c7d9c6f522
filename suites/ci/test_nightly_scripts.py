"""The nightly's scripts run green on Linux: the default suite runs them in their fast mode
(SAO_CI_FAST=1: the audio-suite step on the committed corpus with the Debian packages'
directory pointed at an empty one, a short gate, the job summary); the nightly marker runs the
benchmark bootstrap end to end (record, commit, compare) in a clone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp: Path, **extra) -> dict:
    env = dict(os.environ)
    env.pop("CI", None)  # a missing tool is a skip inside, not this test's failure
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
                "SAO_CI_REPORTS": str(tmp / "reports"), "RUNNER_TEMP": str(tmp),
                "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
                # no Debian package is visible: the corpus must come from the committed clips
                "SAO_AUDIO_SYSTEM_SHARE": str(tmp / "empty-share"),
                "SAO_AUDIO_CORPUS": str(ROOT / "suites/audio/corpus"), **extra})
    return env


def _bash(script: str, env: dict, cwd: Path = ROOT, timeout: float = 600):
    return subprocess.run(["bash", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_memory_check(tmp_path):
    ok = _bash("ci/check-memory.sh", _env(tmp_path, SAO_CI_MEMORY_TOTAL_GB="64"))
    assert ok.returncode == 0 and "memory: 64.0 GB >=" in ok.stdout, ok.stderr
    short = _bash("ci/check-memory.sh", _env(tmp_path, SAO_CI_MEMORY_TOTAL_GB="7"))
    assert short.returncode == 1
    assert "runner memory 7.0 GB < " in short.stderr and "ci/config.sh" in short.stderr


def test_memory_setting_covers_the_measured_peak():
    """The one setting (ci/config.sh) is at least the largest peak RSS README measured."""
    cfg = (ROOT / "ci/config.sh").read_text()
    setting = float(re.search(r"SAO_CI_FULL_PEAK_RSS_GB:=([\d.]+)", cfg).group(1))
    perf = (ROOT / "README.md").read_text().split("## Performance", 1)[1]
    peaks = [float(x) for x in re.findall(r"\| ([\d.]+) GB \|", perf)]
    assert peaks and setting >= max(peaks)


@pytest.mark.nightly  # 20 s: .ci/run's full stage runs it
def test_nightly_fast_mode_runs_green_without_debian_packages(tmp_path):
    (tmp_path / "empty-share").mkdir()
    proc = _bash("ci/nightly.sh", _env(tmp_path, SAO_CI_FAST="1"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"\b2 passed\b", out), out[-3000:]  # the two corpus tests, not skipped
    assert "skipped" not in out.split("short test summary")[-1] or " 0 skipped" in out
    reports = tmp_path / "reports"
    assert (reports / "junit-suites.xml").is_file()
    assert (reports / "gate" / "report.md").is_file()
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("# Weight gate: ACCEPT") and "Run: `sao-harness " in summary


@pytest.mark.nightly
def test_benchmark_bootstrap_record_commit_compare(tmp_path):
    """A machine class without a baseline: ci/bench.sh records the baseline and the noise
    thresholds (warning, artifact); committed, the next ci/bench.sh compares against them."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=600)
    for f in ("ci", "harness", "suites/bench"):  # this tree's scripts, uncommitted or not
        subprocess.run(["cp", "-R", str(ROOT / f), str((clone / f).parent)], check=True)
    env = _env(tmp_path, SAO_BENCH_MACHINE_CLASS="ci-bootstrap-test",
               SAO_CI_BENCH_NOISE_RUNS="2", PYTHONPATH=str(clone))
    first = _bash("ci/bench.sh", env, cwd=clone, timeout=3600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    assert "::warning::no tiny benchmark baseline" in first.stdout
    art = tmp_path / "reports/benchmarks/ci-bootstrap-test"
    assert {p.name for p in art.iterdir()} == {"tiny.json", "threshold.json"}
    git = lambda *a: subprocess.run(["git", "-C", str(clone), *a], check=True,
                                    capture_output=True, text=True)
    git("add", "golden/benchmarks/ci-bootstrap-test")
    git("-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-qm",
        "benchmarks: bootstrap")
    second = _bash("ci/bench.sh", env, cwd=clone, timeout=3600)
    # The comparison ran against the committed files (no exit 2 for a missing threshold.json);
    # whether a timing regressed on this shared machine is not this test's question.
    out = second.stdout + second.stderr
    assert second.returncode in (0, 1) and "benchmark gate vs" in out, out[-4000:]
    assert "::warning::" not in out and "missing" not in out


def _clone(src: Path, dst: Path, *flags: str, env: dict | None = None) -> Path:
    subprocess.run(["git", "clone", "-q", *flags, f"file://{src}", str(dst)], check=True,
                   timeout=600)
    for f in ("ci", "harness"):  # this tree's, uncommitted or not
        subprocess.run(["cp", "-R", str(ROOT / f), str((dst / f).parent)], check=True)
    return dst


@pytest.mark.nightly
def test_ab_gate_skips_with_its_reason_in_a_shallow_clone(tmp_path):
    """.ci/run and the nightly run ci/bench-ab.sh: in a clone without the reference revision
    it says so and passes the turn to the stored-baseline gate, never a verdict."""
    clone = _clone(ROOT, tmp_path / "shallow", "--depth", "1")
    proc = _bash("ci/bench-ab.sh", _env(tmp_path, PYTHONPATH=str(clone)), cwd=clone)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("A/B benchmark gate skipped: revision HEAD~1 is not in this clone's history"
            in proc.stdout), proc.stdout
    since = _bash("ci/bench-ab.sh", _env(tmp_path, PYTHONPATH=str(clone),
                                         SAO_CI_AB_SINCE="1970-01-02"), cwd=clone)
    assert since.returncode == 0 and "no commit before 1970-01-02" in since.stdout, since.stdout


@pytest.mark.nightly
def test_ab_gate_runs_against_the_parent(tmp_path):
    """In a full clone whose HEAD is main's, ci/bench-ab.sh gates HEAD against its parent with
    the real A/B gate (a verdict, exit 0 or 1, and the line naming the reference)."""
    clone = _clone(ROOT, tmp_path / "full")
    git = lambda *a: subprocess.run(["git", "-C", str(clone), *a], check=True,
                                    capture_output=True, text=True).stdout.strip()
    git("-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-q",
        "--allow-empty", "-m", "a change to gate")
    git("update-ref", "refs/remotes/origin/main", "HEAD")  # CI on main: merge-base is HEAD
    parent = git("rev-parse", "HEAD~1")
    proc = _bash("ci/bench-ab.sh", _env(tmp_path, PYTHONPATH=str(clone)), cwd=clone,
                 timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out[-4000:]
    assert f"A/B benchmark gate: HEAD against HEAD~1 ({parent})" in out, out[-4000:]
    assert f"A/B gate vs {parent}" in out, out[-4000:]
