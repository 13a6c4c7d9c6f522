"""Strict safetensors reading and atomic writing.

The header is parsed and checked here (not by the library) so every fault is told in one
line naming the file and, where there is one, the tensor: a pickle or PyTorch zip given a
.safetensors name, a header length past the end of the file, overlapping or truncated data,
a dtype we do not load. Files are written to a temporary name and renamed, so a failed
write never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from harness.errors import BadInput

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
          "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
          "BOOL": np.bool_}
FLOAT_DTYPES = ("F32", "F16", "BF16")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
MAX_HEADER = 100 * 1024 * 1024


def _refuse_pickle(path: Path, head: bytes) -> None:
    if head[:2] == b"PK":
        raise BadInput(path, "is a zip archive (PyTorch torch.save format), not safetensors; "
                             "refusing to unpickle it")
    if head[:1] == b"\x80" and head[1:2] in bytes(range(2, 6)):
        raise BadInput(path, "is a pickle, not safetensors; refusing to unpickle it")


def read_header(path: str | Path) -> tuple[dict, dict, int]:
    """-> (tensor entries, metadata, data offset). Validates the layout, reads no tensor."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise BadInput(path, f"{path.suffix} files are pickle-based; only .safetensors is loaded")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            _refuse_pickle(path, head)
            if len(head) < 8:
                raise BadInput(path, f"truncated: {size} bytes, too short for a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > MAX_HEADER:
                raise BadInput(path, f"header length {n} runs past the end of the file "
                                     f"({size} bytes): truncated or not safetensors")
            raw = f.read(n)
    except FileNotFoundError:
        raise BadInput(path, "no such file") from None
    except IsADirectoryError:
        raise BadInput(path, "is a directory, expected a .safetensors file") from None
    except PermissionError:
        raise BadInput(path, "permission denied") from None
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(path, f"header is not valid JSON ({e}): not a safetensors file") from None
    metadata = header.pop("__metadata__", {}) or {}
    data_len = size - 8 - n
    spans = []
    for name, e in header.items():
        try:
            dtype, shape, (a, b) = e["dtype"], [int(s) for s in e["shape"]], e["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise BadInput(path, f"tensor {name}: malformed header entry {e!r}") from None
        if dtype not in DTYPES:
            raise BadInput(path, f"tensor {name}: unknown dtype {dtype}")
        want = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
        if not (0 <= a <= b) or b - a != want:
            raise BadInput(path, f"tensor {name}: data offsets {a}..{b} do not hold "
                                 f"{dtype} {tuple(shape)} ({want} bytes)")
        if b > data_len:
            raise BadInput(path, f"tensor {name}: data ends at byte {b} but the file holds "
                                 f"{data_len} data bytes (truncated)")
        spans.append((a, b, name))
    spans.sort()
    for (a0, b0, n0), (a1, b1, n1) in zip(spans, spans[1:]):
        if a1 < b0:
            raise BadInput(path, f"tensors {n0} and {n1} overlap in the data section")
    return header, metadata, 8 + n


def read_safetensors(path: str | Path, *, check_finite: bool = True) -> dict[str, np.ndarray]:
    """All tensors as numpy arrays (BF16 widened to float32), in header order."""
    return dict(iter_safetensors(path, check_finite=check_finite))


def iter_safetensors(path: str | Path, *, check_finite: bool = True):
    """(name, numpy array) one tensor at a time, in header order. Each is read into its own
    buffer (no mapping of the file: mapped pages would count in the RSS until the end), so a
    caller that converts and drops each one holds one tensor here, never the whole file."""
    path = Path(path)
    header, _, offset = read_header(path)
    with open(path, "rb") as f:
        for name, e in header.items():
            a, b = e["data_offsets"]
            dtype = np.dtype(DTYPES[e["dtype"]])
            f.seek(offset + a)
            arr = np.fromfile(f, dtype=dtype, count=(b - a) // dtype.itemsize)
            if arr.size * dtype.itemsize != b - a:
                raise BadInput(path, f"tensor {name}: truncated data")
            arr = arr.reshape(e["shape"])
            if e["dtype"] == "BF16":
                arr = (arr.astype(np.uint32) << 16).view(np.float32)
            if check_finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = int((~np.isfinite(arr)).sum())
                raise BadInput(path, f"tensor {name}: {bad} NaN/Inf values")
            yield name, arr


def dtype_names(path: str | Path) -> dict[str, str]:
    """Stored dtype string per tensor (F32, F16, ...), from the header alone."""
    header, _, _ = read_header(path)
    return {k: v["dtype"] for k, v in header.items()}


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray],
                      metadata: dict[str, str] | None = None) -> None:
    """Write atomically: a temporary file in the same directory, then rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as e:
        raise BadInput(path, f"cannot write: {e.strerror or e}") from None
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp,
                  metadata=metadata or {"format": "pt"})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
