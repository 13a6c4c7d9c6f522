"""A port author's workflow, end to end: a package OUTSIDE the tree (tmp_path) with its own
adapter (the README's example), its own pyproject and tests and no conftest.py, pip-installed
next to the harness; from that package's directory `sao-harness port check` and
`pytest --port` both run, the latter with the options and fixtures of the installed plugin.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
README = HERE.parents[1] / "README.md"
SPEC = "myport.adapter:MyPort"
STAGES = "converted_weights,text_encoder,conditioner,decode"

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "sao-myport"
version = "0.0.1"

[tool.setuptools.packages.find]
where = ["src"]
"""

TESTS = '''\
"""sao-harness's per-stage tests, run on this package's port (pytest --port ...)."""
from harness.ports.suite import test_port_stage  # noqa: F401


def test_plugin_fixtures(port_spec, weights_path, golden_dir):
    assert port_spec == "myport.adapter:MyPort"
    assert (weights_path / "model.safetensors").is_file() and golden_dir.is_dir()
'''


def readme_example() -> str:
    """The README's complete adapter example (the python block under "Test your own port")."""
    text = README.read_text()
    section = text[text.index("## Test your own port"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_is_the_tested_adapter():
    assert readme_example() == (HERE / "example_adapter.py").read_text()


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("author")
    pkg = root / "sao-myport"
    (pkg / "src" / "myport").mkdir(parents=True)
    (pkg / "tests").mkdir()
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "src" / "myport" / "__init__.py").write_text("")
    (pkg / "src" / "myport" / "adapter.py").write_text(readme_example())
    (pkg / "tests" / "test_port.py").write_text(TESTS)
    site = root / "site"
    # installed beside the running harness (its venv provides the harness, mlx, setuptools)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(pkg)],
                   check=True, capture_output=True, cwd=root)
    shutil.rmtree(pkg / "src")  # from here on only the installed copy can be imported
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    return pkg, env


def run(cmd, pkg, env):
    return subprocess.run(cmd, cwd=pkg, env=env, capture_output=True, text=True, timeout=600)


def test_port_check_from_the_package(package):
    pkg, env = package
    sao = Path(sys.executable).with_name("sao-harness")
    proc = run([str(sao), "port", "check", SPEC, "--stages", STAGES, "--json"], pkg, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["passed"] and data["adapter"] == "my-mlx-port"
    assert [s["name"] for s in data["stages"]] == STAGES.split(",")
    assert all(s["verdict"] == "pass" for s in data["stages"])
    decode = data["stages"][-1]
    assert len(decode["tensors"]) > 10  # every decoder layer, captured through the module map


def test_pytest_port_from_the_package(package):
    pkg, env = package
    proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                "--port", SPEC, "--port-stages", STAGES, "-rs"], pkg, env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "conftest" not in os.listdir(pkg)
    # 4 checked stages pass, the other 3 are skipped as not covered (never passed), + fixtures
    assert re.search(r"\b5 passed, 3 skipped\b", out), out
    assert out.count("not checked in this run") == 3, out


def test_options_registered_once_in_this_repository():
    """The repository's conftest names the plugin that the entry point also loads."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=HERE.parents[1],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("--port=PORT") == 1 and proc.stdout.count("--weights=WEIGHTS") == 1
