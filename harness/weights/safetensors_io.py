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
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from harness.errors import BadInput
from harness.files import atomic_file, open_regular, regular_file

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
          "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
          "BOOL": np.bool_}
FLOAT_DTYPES = ("F32", "F16", "BF16")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
MAX_HEADER = 100_000_000  # the safetensors library's own limit


def _refuse_pickle(path: Path, head: bytes) -> None:
    if head[:2] == b"PK":
        raise BadInput(path, "is a zip archive (PyTorch torch.save format), not safetensors; "
                             "refusing to unpickle it")
    if head[:1] == b"\x80" and head[1:2] in bytes(range(2, 6)):
        raise BadInput(path, "is a pickle, not safetensors; refusing to unpickle it")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


class _Duplicate(ValueError):
    pass


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _entry(path: Path, name: str, e) -> tuple[str, list[int], int, int]:
    """One tensor entry, type-checked as the format's own reader does."""
    if not isinstance(e, dict) or set(e) - {"dtype", "shape", "data_offsets"} or len(e) != 3:
        raise BadInput(path, f"tensor {name}: header entry must hold exactly dtype, shape and "
                             f"data_offsets, got {_brief(e)}")
    dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
    if not isinstance(dtype, str):
        raise BadInput(path, f"tensor {name}: dtype must be a string, got {_brief(dtype)}")
    if dtype not in DTYPES:
        raise BadInput(path, f"tensor {name}: unknown dtype {_brief(dtype)}")
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise BadInput(path, f"tensor {name}: shape must be a list of non-negative integers, "
                             f"got {_brief(shape)}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_count(o) for o in offsets)):
        raise BadInput(path, f"tensor {name}: data_offsets must be two non-negative integers, "
                             f"got {_brief(offsets)}")
    return dtype, shape, offsets[0], offsets[1]


def _brief(v, limit: int = 80) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def read_header(path: str | Path) -> tuple[dict, dict, int]:
    """-> (tensor entries, metadata, data offset). Validates the layout, reads no tensor.

    As strict as the format's own rules: a regular file; header length <= 100 MB and inside
    the file; the header a JSON object without duplicate keys; `__metadata__` str -> str;
    each entry exactly dtype (known), shape (non-negative ints) and data_offsets (two
    non-negative ints) whose span holds the shape's bytes; the spans tile the data section
    exactly: sorted from 0, no gap, no overlap, no trailing bytes.
    """
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise BadInput(path, f"{path.suffix} files are pickle-based; only .safetensors is loaded")
    size = regular_file(path, "safetensors file").st_size
    try:
        with open_regular(path, "safetensors file") as f:
            head = f.read(8)
            _refuse_pickle(path, head)
            if len(head) < 8:
                raise BadInput(path, f"truncated: {size} bytes, too short for a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise BadInput(path, f"header length {n} runs past the end of the file "
                                     f"({size} bytes): truncated or not safetensors")
            if n > MAX_HEADER:
                raise BadInput(path, f"header length {n} exceeds the format's limit of "
                                     f"{MAX_HEADER} bytes: not safetensors")
            raw = f.read(n)
    except OSError as e:
        raise BadInput(path, f"cannot read: {e.strerror or e}") from None
    if len(raw) != n:
        raise BadInput(path, f"header truncated: {len(raw)} of {n} bytes")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _Duplicate as e:
        raise BadInput(path, f"header holds key {_brief(str(e))} twice") from None
    except RecursionError:
        raise BadInput(path, "header JSON is nested too deeply: not a safetensors file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(path, f"header is not valid JSON ({e}): not a safetensors file") from None
    if not isinstance(header, dict):
        raise BadInput(path, "header is not a JSON object: not a safetensors file")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BadInput(path, f"__metadata__ must map strings to strings, got {_brief(metadata)}")
    data_len = size - 8 - n
    spans = []
    for name, e in header.items():
        dtype, shape, a, b = _entry(path, name, e)
        want = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
        if not a <= b or b - a != want:
            raise BadInput(path, f"tensor {name}: data offsets {a}..{b} do not hold "
                                 f"{dtype} {tuple(shape)} ({want} bytes)")
        if b > data_len:
            raise BadInput(path, f"tensor {name}: data ends at byte {b} but the file holds "
                                 f"{data_len} data bytes (truncated)")
        spans.append((a, b, name))
    spans.sort()
    end, prev = 0, None
    for a, b, name in spans:
        if a < end:
            raise BadInput(path, f"tensors {prev} and {name} overlap in the data section")
        if a > end:
            raise BadInput(path, f"tensor {name}: {a - end} unreferenced bytes before it in the "
                                 f"data section (at offset {end})")
        end, prev = b, name
    if end != data_len:
        raise BadInput(path, f"{data_len - end} trailing bytes after the last tensor's data")
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
    with open_regular(path, "safetensors file") as f:
        for name, e in header.items():
            yield name, _read_entry(f, path, name, e, offset, check_finite)


def _read_entry(f, path: Path, name: str, e: dict, offset: int, check_finite: bool) -> np.ndarray:
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
    return arr


class LazyTensors(Mapping):
    """{name: array} over safetensors files ((path, name prefix) each): every header checked
    up front, each tensor read on access, so a caller holds one tensor at a time."""

    def __init__(self, files, *, check_finite: bool = True):
        self.check_finite = check_finite
        self._where: dict[str, tuple] = {}
        for path, prefix in files:
            header, _, offset = read_header(path)
            self._where.update({prefix + k: (Path(path), k, e, offset) for k, e in header.items()})

    def alias(self, name: str, existing: str) -> None:
        """`name` reads the tensor stored as `existing` (a tied weight)."""
        self._where[name] = self._where[existing]

    def __getitem__(self, name: str) -> np.ndarray:
        path, key, e, offset = self._where[name]
        with open_regular(path, "safetensors file") as f:
            return _read_entry(f, path, key, e, offset, self.check_finite)

    def __iter__(self):
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def dtype_names(path: str | Path) -> dict[str, str]:
    """Stored dtype string per tensor (F32, F16, ...), from the header alone."""
    header, _, _ = read_header(path)
    return {k: v["dtype"] for k, v in header.items()}


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray],
                      metadata: dict[str, str] | None = None) -> None:
    """Write atomically (a temporary file in the same directory, then rename), with the
    umask's permissions."""
    with atomic_file(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp,
                  metadata=metadata or {"format": "pt"})
