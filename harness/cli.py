"""`sao-harness` console script: exit 0 = pass, 1 = check failed, 2 = bad input or usage.

Each area of the harness registers its own subcommands (`register(subparsers)` in its
`commands` module); this file only dispatches and turns exceptions into exit codes, so
every command reports bad input the same way: one line, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.blas import reexec_with_runtime_env
from harness.errors import BadInput, CheckFailed

# Commands that run the model long enough for the BLAS to matter.
PRELOAD_COMMANDS = {"generate", "bench", "gate", "mutants", "compare", "port"}

# Modules that define `register(subparsers)`; each subcommand's function returns an exit code.
COMMAND_MODULES = [
    "harness.weights.commands",         # synth, inspect
    "harness.weights.tflite_commands",  # weights extract / diff
    "harness.model.commands",           # generate
    "harness.audio.commands",           # audio check
    "harness.compare.commands",         # golden record / verify / list
    "harness.compare.compare_cmd",      # compare (first divergence)
    "harness.bench.commands",           # bench
    "harness.gate.commands",            # gate
    "harness.mutants.commands",         # mutants run
    "harness.ports.commands",           # port check
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2 with one line, like bad input
        self.print_usage(sys.stderr)
        print(f"sao-harness: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sao-harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:  # every area ships in every build: a missing one is a bug
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None and args.command in PRELOAD_COMMANDS:
        reexec_with_runtime_env()  # Linux: restart once with OpenBLAS and the heap settings
    try:
        code = args.func(args)
    except BadInput as e:
        print(f"sao-harness: error: {e}", file=sys.stderr)
        return 2
    except CheckFailed as e:
        print(f"sao-harness: check failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head`
        return 0
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
