"""The adapter's own process: `python -m harness.ports.worker SPEC`, driven over its stdin/stdout.

The harness never runs an adapter in its own process: a hang must be killable (per-stage
timeout) and a crash must not take the check down. Requests and answers are pickled frames
(`multiprocessing.connection`); the adapter's prints go to stderr, never into the frames.

Requests: ("load", checkpoint_dir) | ("call", stage, args, capture_names, reference).
Answers: ("ok", value, seconds, captured) | ("not_covered", why) | ("missing", why) |
("error", "Type: message (file:line)").
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
import time
import traceback
from contextlib import nullcontext
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from harness.ports import SHIPPED
from harness.ports.protocol import NotCovered, provides


class SpecError(Exception):
    """The adapter spec cannot be resolved (module, file or attribute)."""


def resolve_spec(spec: str):
    """A shipped name, `module:attr` or `path/to/file.py:attr` -> the adapter object."""
    target = SHIPPED.get(spec, spec)
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise SpecError(f"not a shipped port ({', '.join(SHIPPED)}), module:attr or "
                        "path/to/file.py:attr")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise SpecError(f"no such file {where}")
        sys.path.insert(0, str(path.resolve().parent))  # the adapter's own helper modules
        name = f"sao_port_{path.stem}"
        loader = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        try:
            loader.loader.exec_module(module)
        except Exception as e:
            raise SpecError(f"importing {where} raised {_one_line(e)}") from None
    else:
        try:
            module = importlib.import_module(where)
        except Exception as e:
            raise SpecError(f"cannot import {where}: {_one_line(e)}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise SpecError(f"{where} has no attribute {attr!r}")
    try:
        port = obj() if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "load")) \
            else obj
    except Exception as e:
        raise SpecError(f"constructing {attr} raised {_one_line(e)}") from None
    if not provides(port, "load"):
        raise SpecError(f"{attr} has no load(checkpoint_dir) method")
    return port


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or "(no message)"
    tb = traceback.extract_tb(e.__traceback__)
    where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {msg[:300]}{where}"


def plain(value):
    """Numpy-only, picklable form of a stage result (dataclasses and namedtuples -> dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (int, float, str)):
        return value
    return np.asarray(value)


def _capture(port, names, reference):
    if not names:
        return nullcontext({})
    if provides(port, "capture"):
        return port.capture(names, reference)
    if provides(port, "module_map"):
        from harness.ports.capture import capture_modules

        return capture_modules(port.module_map(), names, reference)
    return nullcontext({})


def _call(port, stage: str, args: dict, names, reference):
    from harness.ports.protocol import Conditioning

    if not provides(port, stage):
        return ("missing", f"the adapter defines no {stage}()")
    if "cond" in args and isinstance(args["cond"], dict):
        args = {**args, "cond": Conditioning(**args["cond"])}
    try:
        with _capture(port, names, reference) as captured:
            t0 = time.perf_counter()
            if stage == "converted_weights":  # to a file: full size is ~2.4 GB
                from harness.ports.weights import dump

                value = {"file": str(Path(args["dir"]) / "converted.safetensors")}
                dump(port.converted_weights(), Path(value["file"]))
            else:
                value = plain(getattr(port, stage)(**args))
            seconds = time.perf_counter() - t0
        return ("ok", value, seconds, dict(captured))
    except NotCovered as e:
        return ("not_covered", str(e) or f"{stage} not covered")
    except NotImplementedError as e:
        why = f": {e}" if str(e) else ""
        return ("error", f"declared but not implemented (NotImplementedError{why})")
    except Exception as e:
        return ("error", f"raised {_one_line(e)}")


def wants_clean_env(port) -> bool:
    """A torch port in a process with the OpenBLAS preload: restart without it."""
    torch = getattr(port, "framework", None) == "torch" or "torch" in sys.modules
    return torch and "openblas" in os.environ.get("LD_PRELOAD", "")


def serve(conn_in: Connection, conn_out: Connection, spec: str, restart=None) -> None:
    try:
        port = resolve_spec(spec)
    except SpecError as e:
        conn_out.send(("error", str(e)))
        return
    if restart is not None and wants_clean_env(port):
        restart()
    conn_out.send(("ok", getattr(port, "name", None) or spec, 0.0, {}))
    while True:
        try:
            request = conn_in.recv()
        except EOFError:
            return
        if request[0] == "quit":
            return
        if request[0] == "load":
            try:
                t0 = time.perf_counter()
                port.load(Path(request[1]))
                conn_out.send(("ok", None, time.perf_counter() - t0, {}))
            except Exception as e:
                conn_out.send(("error", f"raised {_one_line(e)}"))
            continue
        _, stage, args, names, reference = request
        conn_out.send(_call(port, stage, args, names, reference))


def main() -> None:
    fd_in, fd_out = os.dup(0), os.dup(1)
    conn_in = Connection(fd_in, writable=False)
    conn_out = Connection(fd_out, readable=False)
    os.dup2(2, 1)  # the adapter's prints must not corrupt the frames
    sys.stdout = sys.stderr
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)

    def restart():  # same process, same pipes, the environment of harness.reference
        from harness.reference import clean_env

        sys.stderr.flush()
        os.dup2(fd_in, 0)
        os.dup2(fd_out, 1)
        os.execve(sys.executable, [sys.executable, "-m", "harness.ports.worker", sys.argv[1]],
                  clean_env(os.environ))

    serve(conn_in, conn_out, sys.argv[1], restart)


if __name__ == "__main__":
    main()
