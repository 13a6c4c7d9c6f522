"""The GitHub Actions workflows in ci/: they parse, every `sao-harness ...` command in them
parses with our own CLI parser, the python modules they run exist, their pytest marker
expressions select what they claim (actionlint and shellcheck: suites/ci/test_ci_lint.py)."""

from __future__ import annotations

import importlib.util
import re
import shlex
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
    """(script, env) of every `run` step, and of every ci/ script a step runs (`bash
    ci/NAME.sh`, followed into the scripts it runs); env merges workflow, job and step env."""
    out = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                env = {**doc.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                out.append((step["run"], env))
                out += [(text, env) for text in _ci_scripts(step["run"])]
    return out


def _ci_scripts(script: str) -> list[str]:
    out = []
    for name in re.findall(r"(?:bash|\.) (ci/[\w.-]+\.sh)", script):
        text = (ROOT / name).read_text().replace('${1+"$@"}', "")
        out += [text, *_ci_scripts(text)]
    return out


# Variables the ci/ scripts set themselves (ci/bench.sh's loop and ci/config.sh), and values
# they take.
SCRIPT_VALUES = {"preset": ["tiny", "full"], "SAO_CI_BENCH_NOISE_RUNS": ["5"]}


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
                vals = SCRIPT_VALUES.get(name) or _values((env or {}).get(name, "X"))
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
    assert "macos-14" in doc["jobs"]["suites"]["runs-on"]
    assert "schedule" in doc["on"]
    runs = all_commands(doc, "set")  # ci/suites.sh: `set -- suites/ -m "full or not full"`
    full = next(a for a in runs if a[:2] == ["--", "suites/"])
    expr = full[full.index("-m") + 1]
    markers = _markers()
    assert all(_selects(expr, {m}) for m in markers) and _selects(expr, set())
    text = "\n".join(t for t, _ in run_scripts(doc))
    reference = re.search(r'-m pytest suites/reference[^\n]*\n?[^\n]*?-m ("[^"]+"|\w+)', text)
    assert reference and _selects(reference.group(1).strip('"'), {"reference"})
    benches = [a for a in all_commands(doc, "sao-harness") if a[:1] == ["bench"]]
    assert any(a[1:2] == ["compare"] for a in benches)
    # The A/B gate (ci/bench-ab.sh) builds yesterday's commit: the checkout has the history.
    assert any(a[1:3] == ["ab", "--reference"] for a in benches)
    assert doc["env"]["SAO_CI_AB_SINCE"]
    checkout = next(s for s in doc["jobs"]["suites"]["steps"]
                    if str(s.get("uses", "")).startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    uploads = [s for j in doc["jobs"].values() for s in j["steps"]
               if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and all(s.get("if") == "always()" for s in uploads)


def test_weights_gate_triggers_and_summary():
    doc = load(CI / "weights-gate.yml")
    paths = doc["on"]["pull_request"]["paths"]
    assert "**/*.safetensors" in paths and "golden/**" in paths
    script = "\n".join(s for s, _ in run_scripts(doc))
    assert "$GITHUB_STEP_SUMMARY" in script and "summary.md" in script
    gates = [a for a in all_commands(doc, "sao-harness") if a[:1] == ["gate"]]
    assert {a[a.index("--expect") + 1] for a in gates if "--expect" in a} == {"same", "update"}
    assert gates and all("--report" in a for a in gates)
    assert any("--baseline" in a for a in gates)


# actionlint and shellcheck: suites/ci/test_ci_lint.py
