"""The one shape of every `--json` output, success or failure.

    {"passed": bool, "harness_version": "0.1.0", "command": "gate",
     "inputs": {"<file given>": "<sha256>" | null}, ...the command's own keys...}

Bad input (exit 2) and internal errors (exit 3) under --json print the same envelope with
`"passed": false`, `"error": "<the one stderr line>"` and `"exit_code"`, so a caller
always gets an object to parse. Which arguments are input files, each command says with
`set_defaults(inputs=(dest, ...))`; a checkpoint directory stands for its model.safetensors.
Golden stores are not hashed here: their manifests carry every tensor's sha256. A file
larger than MAX_HASH_BYTES is listed with null: a malformed input (a sparse 1 TiB file) must
be refused from its header in seconds, not hashed for hours.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from harness import __version__
from harness.errors import BadInput
from harness.files import open_regular

# Files of a directory given as an input: a checkpoint's weights, or Arm's TFLite files.
_DIR_FILES = ("model.safetensors", "*.tflite")
MAX_HASH_BYTES = 8 << 30  # the full-size checkpoint is 1.7 GB


def command_name(args) -> str | None:
    """`golden verify`, `gate`, ...: the subcommand path from the parsed arguments."""
    name = getattr(args, "command", None)
    if name is None:
        return None
    subs = [v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)]
    return " ".join([name, *subs])


def _sha256(path: Path) -> str | None:
    """None for anything that is not a readable regular file (a FIFO is never opened), or
    is larger than MAX_HASH_BYTES."""
    try:
        h = hashlib.sha256()
        with open_regular(path) as f:
            if os.fstat(f.fileno()).st_size > MAX_HASH_BYTES:
                return None
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
        return h.hexdigest()
    except (BadInput, OSError):
        return None


def input_files(args) -> list[Path]:
    out = []
    for dest in getattr(args, "inputs", ()):
        value = getattr(args, dest, None)
        if value is None:
            continue
        path = Path(value)
        if path.is_dir():
            found = [f for pattern in _DIR_FILES for f in sorted(path.glob(pattern))]
            out += found or [path]
        else:
            out.append(path)
    return out


def input_hashes(args) -> dict[str, str | None]:
    return {str(p): _sha256(p) for p in input_files(args)}


def envelope(args, passed: bool) -> dict:
    return {"passed": bool(passed), "harness_version": __version__,
            "command": command_name(args), "inputs": input_hashes(args)}


def emit(args, body: dict, passed: bool | None = None, indent: int | None = 1) -> None:
    """Print `body` inside the envelope on stdout. `passed` defaults to body["passed"]."""
    doc = envelope(args, body.get("passed") if passed is None else passed)
    doc.update((k, v) for k, v in body.items() if k not in doc)
    json.dump(doc, sys.stdout, indent=indent)
    print()


def emit_error(args, message: str, exit_code: int, extra: dict | None = None) -> None:
    """The error object of a run that did not get to a verdict (exit 2 or 3)."""
    doc = envelope(args, False) if args is not None else {
        "passed": False, "harness_version": __version__, "command": None, "inputs": {}}
    doc.update(error=message, exit_code=exit_code)
    doc.update((k, v) for k, v in (extra or {}).items() if k not in doc)
    json.dump(doc, sys.stdout)
    print()
    sys.stdout.flush()
