"""The test tree is a package: helpers are imported as `suites.x.y` from the rootdir, never by
editing sys.path, and product code never imports a test module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"__pycache__", "corpus", "data"}


def _py_dirs(top: Path):
    for d in [top, *top.rglob("*")]:
        if d.is_dir() and not SKIP & set(d.relative_to(ROOT).parts) and any(d.glob("*.py")):
            yield d


def test_every_suites_folder_is_a_package():
    """Without __init__.py pytest would put the folder itself on sys.path and import its test
    files as top-level modules (name clashes, helpers found by accident)."""
    missing = [d.relative_to(ROOT).as_posix() for d in _py_dirs(ROOT / "suites")
               if not (d / "__init__.py").exists()]
    assert not missing, missing


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_no_sys_path_edits_in_suites_or_tools():
    edits = [p.relative_to(ROOT).as_posix() for top in ("suites", "tools", "conftest.py")
             for p in ([ROOT / top] if top.endswith(".py") else (ROOT / top).rglob("*.py"))
             if "sys.path.insert" in p.read_text() or "sys.path.append" in p.read_text()]
    assert not [e for e in edits if e != "suites/test_suites_package.py"], edits


def test_product_code_imports_no_test_module():
    bad = [(p.relative_to(ROOT).as_posix(), m) for p in (ROOT / "harness").rglob("*.py")
           for m in _imports(p) if m.split(".")[0] in ("suites", "conftest", "tools")]
    assert not bad, bad
