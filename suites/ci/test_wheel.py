"""Installed from the wheel, outside any checkout, the commands work on their own data.

The wheel is built from a copy of the tracked files (`pip wheel --no-deps`, no network) and
installed into a fresh virtualenv; its third-party packages (mlx, numpy, ...) come from the
running environment through a .pth line, so the harness itself can only come from the wheel
(checked). Every command runs from an empty directory elsewhere, with a fresh cache: the
packaged tiny goldens are all it has. About 60 s (mostly `mutants run`), hence nightly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from harness import settings

pytestmark = pytest.mark.nightly
ROOT = Path(__file__).resolve().parents[2]
WHEEL_BUDGET_MB = 60  # the tiny goldens are ~39 MB of it, zipped
TINY = {"tiny-torch", "tiny-torch-long", "tiny-torch-cfg", "tiny-torch-euler", "tiny-litert",
        "tiny-trained-torch", "tiny-trained-torch-euler", "tiny-trained-torch-cfg",
        "tiny-trained-torch-long"}


def _copy_tree(dst: Path) -> Path:
    """The checkout's tracked files (what a clean clone builds from), without its venvs."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if tracked.returncode != 0:  # not a git checkout: everything but hidden dirs and builds
        shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(".*", "build", "dist",
                                                                 "*.egg-info", "__pycache__"))
        return dst
    for name in tracked.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the fresh venv's python, a run(*args) of its sao-harness elsewhere)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_tree(tmp / "src")
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
                    str(tmp / "dist"), str(src)], check=True, capture_output=True)
    wheel, = (tmp / "dist").glob("sao_harness-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                         "['purelib'])"], check=True, capture_output=True,
                          text=True).stdout.strip()
    deps = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    (Path(site) / "_running_env_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", settings.GOLDEN_DIR, "SAO_REFERENCE_PYTHON")}
    env["SAO_HARNESS_CACHE"] = str(tmp / "cache")

    def run(*args, **extra_env):
        return subprocess.run([str(venv / "bin" / "sao-harness"), *args], cwd=elsewhere,
                              env={**env, **extra_env}, capture_output=True, text=True,
                              timeout=600)

    where = subprocess.run([python, "-c", "import harness; print(harness.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout
    return wheel, run


def test_wheel_ships_the_tiny_goldens_and_baselines_only(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    golden = {n.split("/")[3] for n in names if n.startswith("harness/data/golden/")}
    assert TINY | {"benchmarks"} <= golden
    assert not {g for g in golden if g.startswith("full-")}, golden
    assert not [n for n in names if n.startswith(("suites/", "golden/", "tools/"))]
    assert wheel.stat().st_size < WHEEL_BUDGET_MB * 2**20, wheel.stat().st_size


def _json(r) -> dict:
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(r.stdout)


def test_version(installed):
    r = installed[1]("--version")
    assert r.returncode == 0 and r.stdout.startswith("sao-harness "), r.stdout + r.stderr


def test_golden_verify(installed):
    out = _json(installed[1]("golden", "verify", "--json"))
    assert out["passed"] is True
    assert {c["case"] for c in out["cases"]} == TINY, out["cases"]


def test_compare_tiny_torch(installed):
    out = _json(installed[1]("compare", "--case", "tiny-torch", "--json"))
    assert out["passed"] is True and [c["case"] for c in out["cases"]] == ["tiny-torch"]


def test_mutants_run_rope_interleaved(installed):
    out = _json(installed[1]("mutants", "run", "--only", "rope-interleaved", "--json"))
    assert out["passed"] is True and out["control"]["caught"] is False, out["control"]
    m, = out["mutants"]
    assert m["name"] == "rope-interleaved" and m["caught"], m
    assert m["localized_to"] == m["expected_module"] == \
        "model.model.transformer.layers.0.self_attn.q_rotary", m


def test_full_size_goldens_are_located_explicitly(installed):
    """A case the wheel does not ship is bad input naming the way to it; SAO_GOLDEN_DIR
    pointed at a checkout's golden/ finds it."""
    run = installed[1]
    r = run("compare", "--case", "full-torch")
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert len(r.stderr.splitlines()) == 1 and settings.GOLDEN_DIR in r.stderr, r.stderr
    r = run("golden", "list", **{settings.GOLDEN_DIR: str(ROOT / "golden")})
    assert r.returncode == 0 and "full-torch " in r.stdout, r.stdout + r.stderr


def test_bench_compare_times_the_shipped_benchmarks(installed):
    """The benchmark gate runs the stage benchmarks shipped in the package against the
    packaged baselines. Its verdict depends on this machine's load (the gate itself is CI's
    `sao-harness bench compare` step), so a verdict of either kind is accepted here; bad input
    or an internal error is not."""
    r = installed[1]("bench", "compare", "--json")
    assert r.returncode in (0, 1), r.stdout[-2000:] + r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert isinstance(out["passed"], bool) and out["passed"] == (r.returncode == 0)
    names = set(out["fail_min_percent"])
    assert names and all(n.startswith("harness/bench/suite.py::test_stage[tiny-") for n in names)
