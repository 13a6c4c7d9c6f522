"""`sao-harness --version`; every option's help states its default; the CLI is the only
place that parses command lines, and no library module imports it."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import harness
from harness.cli import build_parser, main

HARNESS = Path(harness.__file__).parent
# Scripts with their own arguments: the three run in the reference virtualenv (torch, no MLX;
# `golden record` forwards its arguments to record.py, which defines them for both), and the
# offline maintenance script that retrains the bundled tokenizer.
SCRIPTS = {"reference/record.py", "reference/export_for_extract.py",
           "reference/peer_timing.py", "weights/data/train_spiece.py"}


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sao-harness {harness.__version__}"


def _options(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings and not isinstance(
                action, (argparse._HelpAction, argparse._VersionAction)):
            yield " ".join(path), parser, action


def test_every_option_has_help_showing_its_default():
    missing = []
    options = list(_options(build_parser()))
    assert len(options) > 60
    for command, parser, action in options:
        text = parser.formatter_class(parser.prog)._get_help_string(action) % {
            **vars(action), "prog": parser.prog} if action.help else ""
        if not action.help or not (action.required or "default" in text.lower()):
            missing.append(f"{command} {action.option_strings[0]}: {text!r}")
    assert not missing, "options without help or a stated default:\n" + "\n".join(missing)


def test_one_name_per_concept():
    names = {a.option_strings[0] for _, _, a in _options(build_parser())}
    assert not names & {"--checkpoint", "--root", "--cfg", "--model", "--preset"}
    assert {"--weights", "--golden-dir", "--cfg-scale", "--config"} <= names


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_library_imports_no_cli_and_parses_no_command_line():
    offenders = []
    for path in sorted(HARNESS.rglob("*.py")):
        rel = path.relative_to(HARNESS).as_posix()
        if rel.startswith("cli/"):
            continue
        imports = _imports(path)
        if any(i == "harness.cli" or i.startswith("harness.cli.") for i in imports):
            offenders.append(f"{rel} imports the CLI")
        if "argparse" in imports and rel not in SCRIPTS:
            offenders.append(f"{rel} uses argparse")
    assert not offenders, offenders
