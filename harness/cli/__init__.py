"""`sao-harness` console script: exit 0 = pass, 1 = check failed, 2 = bad input or usage
(a resource limit included), 3 = internal error (`--debug` shows the traceback).

This package is the only place that parses command lines: one module per subcommand, each
with `register(subparsers)`. This file only dispatches and turns exceptions into exit codes,
so every command reports bad input the same way: one line, no traceback. Library code never
imports it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback

from harness.blas import reexec_with_runtime_env
from harness.errors import BadInput, CheckFailed, Terminated, one_line

# Commands that run the model long enough for the BLAS to matter.
PRELOAD_COMMANDS = {"generate", "bench", "gate", "mutants", "compare", "port"}

# Modules that define `register(subparsers)` for the subcommand of their name; each subcommand's
# function returns an exit code.
COMMAND_MODULES = [
    "harness.cli.synth",     # synth
    "harness.cli.inspect",   # inspect
    "harness.cli.weights",   # weights extract / diff
    "harness.cli.generate",  # generate
    "harness.cli.audio",     # audio check
    "harness.cli.golden",    # golden record / verify / list / calibrate
    "harness.cli.compare",   # compare (first divergence)
    "harness.cli.bench",     # bench, bench record / compare / noise
    "harness.cli.gate",      # gate
    "harness.cli.mutants",   # mutants run / list
    "harness.cli.port",      # port check
]


class UsageError(SystemExit):
    """A command line that does not parse: exit 2, one line."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already states it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.default is argparse.SUPPRESS or \
                not action.option_strings:
            return text
        if action.nargs == 0:  # a flag
            return f"{text} (default: off)".strip()
        if action.default is None:  # each such option says in words what it falls back to
            return text
        return f"{text} (default: %(default)s)".strip()


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, **kw):
        kw.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*a, **kw)

    def error(self, message: str):  # usage errors exit 2 with one line, like bad input
        message = f"{one_line(message)} (see --help)"
        print(f"sao-harness: error: {message}", file=sys.stderr)
        raise UsageError(message)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the command line, only its subcommand's module is imported (a CLI
    process then pays for what it runs, not for scipy and the model: the suites start
    hundreds of them). Without a known subcommand (--help, a typo) every one is."""
    from harness import __version__

    parser = _Parser(prog="sao-harness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sao-harness {__version__}",
                        help="print the harness version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    first = argv[0] if argv else None
    modules = COMMAND_MODULES
    if first == "--version":
        modules = []
    elif f"harness.cli.{first}" in COMMAND_MODULES:
        modules = [f"harness.cli.{first}"]
    for name in modules:
        importlib.import_module(name).register(sub)  # every area ships: a missing one is a bug
    return parser


def _terminate(signum, frame):
    raise Terminated()


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """`--debug` anywhere before a `--`: tracebacks for internal errors."""
    end = argv.index("--") if "--" in argv else len(argv)
    rest = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return rest, len(rest) != len(argv)


def _error(kind: str, message: object, args=None, code: int = 2, extra=None) -> None:
    """The one stderr line; under --json also the error object on stdout (cli/output.py)."""
    line = one_line(message)
    print(f"sao-harness: {kind}: {line}", file=sys.stderr)
    if args is not None and getattr(args, "json", False):
        from harness.cli.output import emit_error

        emit_error(args, line if kind == "error" else f"{kind}: {line}", code, extra)


def _leave(code: int, argv) -> int:
    """After an interrupt (clean-up done by the finally blocks on the way here): a worker
    thread may still be inside MLX (the gate), whose teardown at interpreter exit would
    crash, so the console script leaves at once."""
    if argv is None and threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    raw, debug = _split_debug(raw)
    try:
        args = build_parser(raw).parse_args(raw)
    except UsageError as e:
        end = raw.index("--") if "--" in raw else len(raw)
        if "--json" in raw[:end]:
            from harness.cli.output import emit_error

            emit_error(None, e.message, 2)
        return 2
    except SystemExit as e:  # --help, --version
        return int(e.code or 0) if isinstance(e.code, int) else 2
    if argv is None and args.command in PRELOAD_COMMANDS:
        reexec_with_runtime_env()  # Linux: restart once with OpenBLAS and the heap settings
    # SIGTERM becomes an exception, so the commands' finally/except blocks remove their
    # temporary files and directories (SIGINT already is one: KeyboardInterrupt).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        if hasattr(args, "device"):  # commands that run the model (harness.device)
            from harness.device import use_device
            use_device(args.device)
        code = args.func(args)
    except BadInput as e:
        _error("error", e, args, 2, getattr(e, "json_extra", None))
        return 2
    except CheckFailed as e:
        _error("check failed", e, args, 1)
        return 1
    except MemoryError as e:  # a resource limit: the input asked for too much, not a verdict
        _error("error", f"out of memory ({e or 'MemoryError'}): the input needs more memory "
                        "than this machine has", args, 2)
        return 2
    except KeyboardInterrupt:
        _error("error", "interrupted")
        return _leave(130, argv)
    except Terminated:
        _error("error", "terminated (SIGTERM)")
        return _leave(143, argv)
    except BrokenPipeError:  # output piped into `head`
        return 0
    except Exception as e:  # noqa: BLE001 - a crash must never read as a check's verdict
        if debug:
            traceback.print_exc()
        _error("internal error", f"{type(e).__name__}: {e}; rerun with --debug for the "
                                 "traceback", args, 3)
        return 3
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return int(code or 0)
