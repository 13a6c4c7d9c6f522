"""A .tflite file's graph read straight from its flatbuffer (no interpreter, no extra package):
tensors with their quantization, buffers memory-mapped, operators by name."""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.files import open_regular

# -- flatbuffer ----------------------------------------------------------------------------------
# Field numbers of schema.fbs (tensorflow/lite/schema); a field's vtable slot is 4 + 2·number.

TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
         7: np.int16, 9: np.int8, 10: np.float64, 18: np.uint16}
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
              6: "bool", 7: "int16", 9: "int8", 10: "float64", 17: "int4", 18: "bfloat16"}
OPS = {0: "ADD", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE", 7: "EMBEDDING_LOOKUP",
       9: "FULLY_CONNECTED", 18: "MUL", 22: "RESHAPE", 36: "GATHER", 39: "TRANSPOSE", 41: "SUB",
       42: "DIV", 43: "SQUEEZE", 53: "CAST", 66: "SIN", 67: "TRANSPOSE_CONV", 70: "EXPAND_DIMS",
       108: "COS", 126: "BATCH_MATMUL"}


class _Table:
    """One flatbuffer table: fields read lazily from the file's bytes."""

    __slots__ = ("buf", "pos", "vt", "vlen")

    def __init__(self, buf, pos: int):
        self.buf, self.pos = buf, pos
        self.vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vlen = struct.unpack_from("<H", buf, self.vt)[0]

    def _at(self, n: int) -> int:
        slot = 4 + 2 * n
        if slot >= self.vlen:
            return 0
        off = struct.unpack_from("<H", self.buf, self.vt + slot)[0]
        return self.pos + off if off else 0

    def scalar(self, n: int, fmt: str, default=0):
        at = self._at(n)
        return struct.unpack_from("<" + fmt, self.buf, at)[0] if at else default

    def _target(self, n: int) -> int:
        at = self._at(n)
        return at + struct.unpack_from("<I", self.buf, at)[0] if at else 0

    def table(self, n: int) -> "_Table | None":
        t = self._target(n)
        return _Table(self.buf, t) if t else None

    def vector(self, n: int, dtype) -> np.ndarray | None:
        t = self._target(n)
        if not t:
            return None
        count = struct.unpack_from("<I", self.buf, t)[0]
        return np.frombuffer(self.buf, dtype=dtype, count=count, offset=t + 4)

    def tables(self, n: int) -> list["_Table"]:
        t = self._target(n)
        if not t:
            return []
        count = struct.unpack_from("<I", self.buf, t)[0]
        out = []
        for i in range(count):
            at = t + 4 + 4 * i
            out.append(_Table(self.buf, at + struct.unpack_from("<I", self.buf, at)[0]))
        return out

    def string(self, n: int) -> str:
        raw = self.vector(n, np.uint8)
        return "" if raw is None else raw.tobytes().decode("utf-8", "replace")


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    axis: int = 0

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type{self.type}")


@dataclass
class Op:
    index: int
    code: str
    inputs: list[int]
    outputs: list[int]


@dataclass
class Graph:
    """Subgraph 0 of a .tflite file: tensors, ops, and raw constant bytes."""

    path: Path
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    buffers: list[tuple[int, int]]  # (file offset, byte length) of each buffer's data
    data: object  # the file's bytes (mmap)

    def raw(self, t: Tensor) -> np.ndarray | None:
        off, size = self.buffers[t.buffer] if t.buffer < len(self.buffers) else (0, 0)
        dtype = TYPES.get(t.type)
        if not size or dtype is None:
            return None
        count = size // np.dtype(dtype).itemsize
        if count != math.prod(t.shape):
            raise BadInput(self.path, f"tensor {t.name!r}: {size} bytes do not hold shape "
                                      f"{list(t.shape)} of {t.type_name}")
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=off).reshape(t.shape)


def read_graph(path: str | Path) -> Graph:
    """Parse a .tflite flatbuffer (schema v3). Malformed input is BadInput naming the file."""
    path = Path(path)
    try:
        with open_regular(path, "TFLite model") as f:  # a FIFO would block open()
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise BadInput(path, "no such file") from None
    except (OSError, ValueError) as e:  # ValueError: an empty file cannot be mapped
        raise BadInput(path, f"cannot read as a TFLite model ({e})") from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BadInput(path, "not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        model = _Table(data, struct.unpack_from("<I", data, 0)[0])
        buffers = []
        for b in model.tables(4):
            vec = b._target(0)
            if vec:
                buffers.append((vec + 4, struct.unpack_from("<I", data, vec)[0]))
            else:  # large models keep data outside the flatbuffer, at (offset, size)
                off, size = b.scalar(1, "Q"), b.scalar(2, "Q")
                buffers.append((off, size) if off > 1 else (0, 0))
        codes = []
        for c in model.tables(1):
            codes.append(max(c.scalar(0, "b"), c.scalar(3, "i")))
        subgraphs = model.tables(2)
        if not subgraphs:
            raise BadInput(path, "TFLite model has no subgraph")
        sg = subgraphs[0]
        tensors = []
        for i, t in enumerate(sg.tables(0)):
            shape = t.vector(0, np.int32)
            q = t.table(4)
            scale = zp = None
            axis = 0
            if q is not None:
                scale = q.vector(2, np.float32)
                zp = q.vector(3, np.int64)
                axis = q.scalar(6, "i")
            tensors.append(Tensor(i, t.string(3), tuple(int(d) for d in (shape if shape is not None else ())),
                                  t.scalar(1, "b"), t.scalar(2, "I"),
                                  None if scale is None or not len(scale) else np.array(scale),
                                  None if zp is None or not len(zp) else np.array(zp), axis))
        ops = []
        for i, o in enumerate(sg.tables(3)):
            code = codes[o.scalar(0, "I")]
            ins, outs = o.vector(1, np.int32), o.vector(2, np.int32)
            ops.append(Op(i, OPS.get(code, f"OP{code}"), [int(x) for x in (ins if ins is not None else ())],
                          [int(x) for x in (outs if outs is not None else ())]))
        inputs = sg.vector(1, np.int32)
        inputs = [int(x) for x in (inputs if inputs is not None else ())]
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
        raise BadInput(path, f"malformed TFLite flatbuffer ({type(e).__name__}: {e})") from None
    for off, size in buffers:
        if off + size > len(data):
            raise BadInput(path, f"buffer at {off}+{size} runs past the end of the file "
                                 f"({len(data)} bytes): truncated")
    return Graph(path, tensors, ops, inputs, buffers, data)


