"""Extract the weights of Arm-style LiteRT (TFLite) files under official checkpoint names.

`extract(path)` reads the constant tensors of conditioners_float32.tflite, dit_model.tflite and
autoencoder_model.tflite (any subset) straight from the flatbuffer (no interpreter, no extra
package), undoes what the converter did to them and names each after the official state dict:

- dequantizes int8 (per-channel or per-tensor scale, zero point) and fp16 constants, including
  DEQUANTIZE / TRANSPOSE / RESHAPE ops applied to constants (weight-only quantization, layout
  transposes the converter left in the graph);
- re-lays them out: FULLY_CONNECTED (out, in) is already the torch layout; CONV_2D weights are
  OHWI (out, 1, k, in) -> torch (out, in, k); TRANSPOSE_CONV (out, 1, k, in) -> torch (in, out, k);
- undoes constant folding it can see: SnakeBeta holds exp(alpha) and 1/(exp(beta)+1e-9) (-> alpha,
  beta); RoPE holds cos/sin tables (-> inv_freq from position 1).

What it cannot undo, it records instead: weight norm is fused (the file holds w = g·v/‖v‖ under
`<module>.weight`, official layout, no weight_g/weight_v), and a LayerNorm whose affine the
converter folded into the following Linear (ff_norm into ff.ff.0.proj: W·diag(γ), b + W·β) is
listed in `folded`. `harness.weights.diff` applies the same fusing and folding to a checkpoint.

Names come from the module scopes litert-torch writes into tensor names (`<qualified
class>_<attr>` segments; a constant's own name or the name of its consumer's output), matched
to official module paths; a tensor without a usable scope is named by a unique (role, shape)
among the expected tensors, and with a reference checkpoint by content. The rest is listed as
unmapped, never guessed.
"""

from __future__ import annotations

import json
import math
import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from harness.errors import BadInput
from harness.files import open_regular, read_small
from harness.model.config import PRESETS, ModelConfig, T5Config

ARM_FILES = {"conditioners": "conditioners_float32.tflite", "dit": "dit_model.tflite",
             "autoencoder": "autoencoder_model.tflite"}
FORMAT = "sao-harness/tflite-weights/1"
STEP_PREFIX = "__step__."  # int8 quantization step of tensor X, broadcastable to X
T5_PREFIX = "conditioner.conditioners.prompt.model."
SNAKE_EPS = 1e-9  # SnakeBeta: x + 1/(exp(beta) + 1e-9) * sin(exp(alpha) x)^2

# Rounding a value x into each float storage type moves it by at most REL·|x| (half an ulp),
# or half the subnormal spacing, FLOOR, for values below the normal range.
REL = {"float32": 2.0 ** -24, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8, "int8": 0.0}
FLOOR = {"float32": 2.0 ** -150, "float16": 2.0 ** -25, "bfloat16": 2.0 ** -134, "int8": 0.0}
# fp32 arithmetic allowed on top for a value the converter computed (exp, cos) and we invert.
CALC_ABS = 2.0 ** -21

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


# -- constants: dequantize, fold pass-through ops, attach an error model -------------------------

PASS_THROUGH = {"DEQUANTIZE", "TRANSPOSE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CAST"}


@dataclass
class Value:
    """A float constant with its storage error: |true - value| <= step/2 + rel·|value| + abs."""

    value: np.ndarray
    storage: str
    step: np.ndarray | None = None  # int8 scale, broadcastable to value
    rel: float = 0.0
    abs: float = 0.0

    def apply(self, fn: Callable[[np.ndarray], np.ndarray]) -> "Value":
        """Same layout change on the value and its step."""
        step = None
        if self.step is not None:
            step = fn(np.broadcast_to(self.step, self.value.shape)) if self.step.size > 1 \
                else self.step.reshape(())
        return Value(np.ascontiguousarray(fn(self.value)), self.storage,
                     None if step is None else np.ascontiguousarray(step), self.rel, self.abs)


def _dequantize(g: Graph, t: Tensor) -> Value | None:
    raw = g.raw(t)
    if raw is None:
        return None
    if raw.dtype.kind == "f":
        storage = "float16" if raw.dtype == np.float16 else "float32"  # float64 is cast to fp32
        return Value(raw.astype(np.float32), storage, rel=REL[storage])
    if raw.dtype == np.uint16 and t.type == 18:  # bfloat16
        return Value((raw.astype(np.uint32) << 16).view(np.float32), "bfloat16", rel=REL["bfloat16"])
    if t.scale is None or raw.dtype.kind not in "iu" or raw.dtype.itemsize > 2:
        return None  # shapes, indices, masks: not weights
    shape = [1] * raw.ndim
    if t.scale.size > 1:
        shape[t.axis] = t.scale.size
    scale = t.scale.astype(np.float32).reshape(shape)
    zp = (t.zero_point if t.zero_point is not None else np.zeros(1, np.int64)).reshape(
        shape if t.zero_point is not None and t.zero_point.size > 1 else [1] * raw.ndim)
    value = ((raw.astype(np.float32) - zp.astype(np.float32)) * scale).astype(np.float32)
    return Value(value, t.type_name, step=np.ascontiguousarray(scale))


@dataclass
class Leaf:
    """A float constant as its consumers see it (after folding pass-through ops)."""

    graph: Graph
    tensor: Tensor           # the tensor consumers read
    sources: list[Tensor]    # stored constants it came from (names carry scopes too)
    load: Callable[[], Value]
    consumers: list[tuple[Op, int]]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.tensor.shape

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _fold(op: Op, g: Graph, get: Callable[[int], Value | None]) -> Callable[[], Value] | None:
    """Evaluate a pass-through op on constant inputs, lazily."""
    out_shape = g.tensors[op.outputs[0]].shape

    def run() -> Value:
        v = get(op.inputs[0])
        if op.code == "DEQUANTIZE" or op.code == "CAST":
            return v
        if op.code == "TRANSPOSE":
            perm = tuple(int(p) for p in g.raw(g.tensors[op.inputs[1]]).ravel())
            return v.apply(lambda a: a.transpose(perm))
        return v.apply(lambda a: a.reshape(out_shape))
    return run


def constant_leaves(g: Graph) -> list[Leaf]:
    produced = {o for op in g.ops for o in op.outputs}
    consumers: dict[int, list[tuple[Op, int]]] = {}
    for op in g.ops:
        for slot, i in enumerate(op.inputs):
            if i >= 0:
                consumers.setdefault(i, []).append((op, slot))
    loads: dict[int, Callable[[], Value | None]] = {}
    sources: dict[int, list[Tensor]] = {}
    for t in g.tensors:
        has_data = t.buffer < len(g.buffers) and g.buffers[t.buffer][1] > 0
        if has_data and t.index not in produced and t.index not in g.inputs:
            loads[t.index] = (lambda t=t: _dequantize(g, t))
            sources[t.index] = [t]
    cache: dict[int, Value | None] = {}

    def get(i: int) -> Value | None:
        if i not in cache:
            cache[i] = loads[i]()
        return cache[i]

    folded = set()
    for op in g.ops:
        if op.code in PASS_THROUGH and op.inputs and op.inputs[0] in loads and \
                all(i in loads or i < 0 for i in op.inputs) and len(op.outputs) == 1:
            if g.tensors[op.inputs[0]].type not in (0, 1, 9, 3, 7, 18):
                continue  # integer shape arithmetic
            out = op.outputs[0]
            loads[out] = _fold(op, g, get)
            sources[out] = sources[op.inputs[0]]
            folded.add(op.inputs[0])
    leaves = []
    for i, load in loads.items():
        t = g.tensors[i]
        uses = consumers.get(i, [])
        if i in folded and all(op.code in PASS_THROUGH for op, _ in uses):
            continue  # only an input of folded ops
        if t.type not in (0, 1, 9, 3, 7, 18) or math.prod(t.shape) <= 1:
            continue  # integer constants and scalars (eps, 2π, shapes) are not weights
        if t.type in (9, 3, 7) and g.tensors[sources[i][0].index].scale is None:
            continue
        leaves.append(Leaf(g, t, sources[i], lambda i=i: get(i), uses))
    return leaves


# -- official names --------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    name: str
    module: str
    param: str
    shape: tuple[int, ...]
    kind: str | None  # "conv" | "convT" | None
    fused: bool       # a weight-normed conv's fused weight (official: weight_g + weight_v)


def official_keys(cfg: ModelConfig) -> dict[str, Key]:
    """Every name an extraction may produce: the checkpoint's keys with each weight_g/weight_v
    pair replaced by `<module>.weight`, plus T5 under its conditioner path."""
    from harness.weights.convert import conv_modules
    from harness.weights.validate import T5_TIED, expected_checkpoint, expected_t5

    kinds = conv_modules(cfg)
    out: dict[str, Key] = {}
    for name, spec in expected_checkpoint(cfg).items():
        module, param = name.rsplit(".", 1)
        if param == "weight_g":
            continue
        fused = param == "weight_v"
        if fused:
            name, param = f"{module}.weight", "weight"
        out[name] = Key(name, module, param, spec.shape, kinds.get(module), fused)
    for name, spec in expected_t5(cfg.t5).items():
        if name == T5_TIED:
            continue
        module, param = (T5_PREFIX + name).rsplit(".", 1)
        out[T5_PREFIX + name] = Key(T5_PREFIX + name, module, param, spec.shape, None, False)
    return out


def role_of(key: str) -> str:
    if key.startswith("model.model."):
        return "dit"
    if key.startswith("pretransform.model.decoder."):
        return "autoencoder"
    if key.startswith("conditioner."):
        return "conditioners"
    return "other"


_SEGMENT = re.compile(r"^[A-Za-z_][\w.]*$")


def scope_chains(name: str) -> list[list[str]]:
    """Module attribute chains in a litert-torch tensor name. Each '/'-separated segment is
    `<qualified class>_<attr>` (the root has no attr); ';' separates several locations."""
    chains = []
    for part in name.split(";"):
        if "/" not in part and "_" not in part.rsplit(".", 1)[-1]:
            continue
        chain = []
        for seg in part.split("/"):
            if not _SEGMENT.match(seg):
                continue
            cls = seg.rsplit(".", 1)[-1]
            if "_" in cls:
                chain.append(cls.split("_", 1)[1])
        if chain:
            chains.append(chain)
    return chains


def _match(chain: list[str], path: list[str]) -> int:
    """How many components of `path` the chain names, aligned at the end. The module itself
    must be the chain's last attr; containers that are never called (ModuleList: `layers` before
    an index) may be absent from the chain; an unmatched leading part is a wrapper difference."""
    i, j, score = len(chain) - 1, len(path) - 1, 0
    if chain[i] != path[j]:
        return 0
    while i >= 0 and j >= 0:
        if chain[i] == path[j]:
            score += 1
            i -= 1
        elif not (j + 1 < len(path) and path[j + 1].isdigit()):
            break
        j -= 1
    return score


class Namer:
    """Official keys indexed for scope matching."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.keys = official_keys(cfg)
        self.modules: dict[str, dict[str, Key]] = {}
        for k in self.keys.values():
            self.modules.setdefault(k.module, {})[k.param] = k
        self.by_last: dict[str, list[list[str]]] = {}
        for m in self.modules:
            parts = m.split(".")
            self.by_last.setdefault(parts[-1], []).append(parts)

    def resolve(self, chain: list[str]) -> tuple[str | None, int]:
        best, score, tie = None, 0, False
        for parts in self.by_last.get(chain[-1], ()):
            s = _match(chain, parts)
            if s > score:
                best, score, tie = ".".join(parts), s, False
            elif s == score and s:
                tie = True
        return (None, 0) if tie else (best, score)


# Role of a constant from its consumer: (op, input slot) -> role.
ROLES = {("FULLY_CONNECTED", 1): "fc_w", ("FULLY_CONNECTED", 2): "bias",
         ("CONV_2D", 1): "conv_w", ("CONV_2D", 2): "bias",
         ("TRANSPOSE_CONV", 1): "convT_w", ("TRANSPOSE_CONV", 3): "bias",
         ("EMBEDDING_LOOKUP", 1): "table", ("GATHER", 0): "table",
         ("MUL", 0): "mul", ("MUL", 1): "mul", ("ADD", 0): "add", ("ADD", 1): "add"}
MUL_PARAMS = ("weight", "gamma", "weights", "alpha")
ADD_PARAMS = ("bias", "beta")


def _role(leaf: Leaf) -> str | None:
    roles = {ROLES.get((op.code, slot)) for op, slot in leaf.consumers}
    return roles.pop() if len(roles) == 1 else None


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _conv_layout(v: Value, kind: str) -> Value | None:
    """OHWI with H or W of 1 -> (O, K, I) -> torch conv (O, I, K) or conv-transpose (I, O, K)."""
    if v.value.ndim != 4 or 1 not in v.value.shape[1:3]:
        return None
    squeeze = 1 if v.value.shape[1] == 1 else 2
    perm = (0, 2, 1) if kind == "conv" else (2, 0, 1)
    return v.apply(lambda a: np.take(a, 0, axis=squeeze).transpose(perm))


def _official_shape(leaf: Leaf, role: str) -> tuple[int, ...]:
    s = leaf.shape
    if role in ("conv_w", "convT_w") and len(s) == 4:
        o, k, i = s[0], (s[2] if s[1] == 1 else s[1]), s[3]
        return (o, i, k) if role == "conv_w" else (i, o, k)
    return s


def _feeds_sin(leaf: Leaf) -> bool:
    g = leaf.graph
    for op, _ in leaf.consumers:
        for out in op.outputs:
            if any(o.code == "SIN" and out in o.inputs for o in g.ops):
                return True
    return False


def _candidates(namer: Namer, module: str, leaf: Leaf, role: str) -> list[Key]:
    params = namer.modules.get(module, {})
    if role in ("fc_w", "conv_w", "convT_w", "table"):
        want = {"fc_w": None, "conv_w": "conv", "convT_w": "convT", "table": None}[role]
        k = params.get("weight")
        ok = k is not None and k.kind == want and k.shape == _official_shape(leaf, role)
        return [k] if ok else []
    if role == "bias":
        k = params.get("bias")
        return [k] if k is not None and _squeezed(k.shape) == _squeezed(leaf.shape) else []
    names = MUL_PARAMS if role == "mul" else ADD_PARAMS
    if role == "mul" and "alpha" in params and "beta" in params:  # SnakeBeta: both multiply
        names = ("alpha",) if _feeds_sin(leaf) else ("beta",)
    return [params[n] for n in names if n in params
            and _squeezed(params[n].shape) == _squeezed(leaf.shape)]


def _to_official(leaf: Leaf, role: str, key: Key) -> tuple[Value, str | None]:
    """The leaf's value in the official layout and meaning, and the transform undone."""
    v = leaf.load()
    if role in ("conv_w", "convT_w"):
        return _conv_layout(v, key.kind), None
    v = v.apply(lambda a: a.reshape(key.shape))
    if key.param in ("alpha", "beta") and key.module.startswith("pretransform."):
        # Folded exp(alpha) and 1/(exp(beta)+eps): a relative error r of the stored constant
        # is an absolute error r on its log.
        c = v.value.astype(np.float64)
        out = np.log(c) if key.param == "alpha" else np.log(1.0 / c - SNAKE_EPS)
        bound_abs = v.rel + v.abs + CALC_ABS
        if v.step is not None:  # quantized exp(alpha) (not seen in practice): step/2 / c
            bound_abs = bound_abs + float(np.max(np.broadcast_to(v.step, c.shape) / (2 * c)))
        return Value(out.astype(np.float32), v.storage, None, 0.0, bound_abs), \
            "log" if key.param == "alpha" else "snake_beta"
    return v, None


def _rope(leaves: list[Leaf], namer: Namer) -> dict[int, tuple[Key, Value, Leaf]]:
    """cos/sin tables of positions 0..P-1 over cat(f, f): inv_freq f = atan2(sin[1], cos[1])."""
    keys = [k for k in namer.keys.values() if k.name.endswith("rotary_pos_emb.inv_freq")]
    tables = [l for l in leaves if len(l.shape) == 2 and l.shape[0] >= 2 and l.shape[1] % 2 == 0
              and l.shape[1] // 2 in {k.shape[0] for k in keys} and _role(l) == "mul"]
    out = {}
    for c in tables:
        cv = c.load().value
        if not np.allclose(cv[0], 1.0, atol=1e-6):
            continue
        for s in tables:
            sv = s.load().value
            if s.shape != c.shape or not np.allclose(sv[0], 0.0, atol=1e-6):
                continue
            half = cv.shape[1] // 2
            f = np.arctan2(sv[1, :half].astype(np.float64), cv[1, :half].astype(np.float64))
            angles = np.arange(cv.shape[0])[:, None] * np.concatenate([f, f])[None]
            if np.abs(np.cos(angles) - cv).max() > 1e-3 or np.abs(np.sin(angles) - sv).max() > 1e-3:
                continue
            for k in keys:
                if k.shape == (half,):
                    r = max(c.load().rel, s.load().rel)
                    val = Value(f.astype(np.float32), c.load().storage, None, 0.0, 2 * r + CALC_ABS)
                    out[id(c)] = (k, val, c)
                    out[id(s)] = (k, val, s)
    return out


# -- extraction ------------------------------------------------------------------------------

@dataclass
class Extraction:
    config: ModelConfig
    roles: dict[str, str]                      # role -> .tflite path
    tensors: dict[str, Value] = field(default_factory=dict)
    info: dict[str, dict] = field(default_factory=dict)  # name -> source, how, transform
    unmapped: list[dict] = field(default_factory=list)
    zero_biases: list[str] = field(default_factory=list)
    folded: dict[str, str] = field(default_factory=dict)  # norm module -> Linear it went into
    missing: list[str] = field(default_factory=list)

    def expected(self) -> list[str]:
        return [k for k in official_keys(self.config) if role_of(k) in self.roles]


def tflite_files(path: str | Path) -> dict[str, Path]:
    """role -> file for a directory of Arm's files (any subset) or a single .tflite file."""
    path = Path(path)
    if path.is_dir():
        files = {r: path / f for r, f in ARM_FILES.items() if (path / f).is_file()}
        if not files:
            raise BadInput(path, "no TFLite files here (expected any of "
                                 + ", ".join(ARM_FILES.values()) + ")")
        return files
    if path.is_file() and path.suffix == ".tflite":
        role = next((r for r, f in ARM_FILES.items() if f == path.name), "model")
        return {role: path}
    raise BadInput(path, "not a TFLite directory or .tflite file")


def _map(graphs: dict[str, Graph], namer: Namer, reference: dict[str, np.ndarray] | None,
         ex: Extraction) -> None:
    leaves = [(role, l) for role, g in graphs.items() for l in constant_leaves(g)]
    rope = _rope([l for _, l in leaves], namer)
    pending: list[tuple[str, Leaf, str | None]] = []
    claimed: dict[str, Leaf] = {}

    def take(key: Key, value: Value, leaf: Leaf, how: str, transform: str | None) -> None:
        if key.name in claimed:  # the same weight stored twice: keep one, drop equal copies
            if np.array_equal(ex.tensors[key.name].value, value.value):
                return
            ex.unmapped.append(_unmapped(leaf, f"also maps to {key.name} but holds other values"))
            return
        claimed[key.name] = leaf
        ex.tensors[key.name] = value
        ex.info[key.name] = {"file": leaf.graph.path.name, "tflite": leaf.sources[0].name,
                             "storage": value.storage, "how": how, "transform": transform,
                             "fused": "weight_norm" if key.fused else None}

    for role, leaf in leaves:
        if id(leaf) in rope:
            key, val, _ = rope[id(leaf)]
            take(key, val, leaf, "rope tables", "atan2")
            continue
        r = _role(leaf)
        if r is None:
            pending.append((role, leaf, r))
            continue
        key = _by_scope(namer, leaf, r)
        if key is not None:
            value, transform = _to_official(leaf, r, key)
            if value is not None:
                take(key, value, leaf, "name", transform)
                continue
        pending.append((role, leaf, r))

    for role, leaf, r in pending:  # no usable scope: a unique (role, shape), else content
        if r == "bias" and not np.any(leaf.load().value):
            ex.zero_biases.append(f"{leaf.graph.path.name}:{leaf.tensor.name}")
            continue
        keys = [k for k in namer.keys.values() if k.name not in claimed and role_of(k.name) in
                (role, "other") and r is not None and k in _candidates(namer, k.module, leaf, r)]
        how = "shape"
        if len(keys) > 1 and reference is not None:
            keys = [k for k in keys if _content_match(leaf, r, k, reference)]
            how = "content"
        if len(keys) == 1:
            value, transform = _to_official(leaf, r, keys[0])
            if value is not None:
                take(keys[0], value, leaf, how, transform)
                continue
        reason = "no scope in its name and its role/shape fits " + (
            f"{len(keys)} tensors" if keys else "no expected tensor")
        ex.unmapped.append(_unmapped(leaf, reason))


def _by_scope(namer: Namer, leaf: Leaf, role: str) -> Key | None:
    """The key named by the best-matching scope: first in the names of the consumer's outputs
    (the op's own location), then in the constant's names (which the converter may merge from
    several uses)."""
    groups = ([leaf.graph.tensors[o].name for op, _ in leaf.consumers for o in op.outputs],
              [s.name for s in leaf.sources])
    for names in groups:
        best: dict[str, tuple[int, Key]] = {}
        for name in names:
            # A fused location lists the callers first and the op's own scope last.
            for chain in reversed(scope_chains(name)):
                module, score = namer.resolve(chain)
                keys = _candidates(namer, module, leaf, role) if module else []
                for k in keys:
                    if score > best.get(k.name, (0, k))[0]:
                        best[k.name] = (score, k)
                if keys:
                    break
        ranked = sorted(best.values(), key=lambda x: -x[0])
        if ranked and (len(ranked) == 1 or ranked[0][0] > ranked[1][0]):
            return ranked[0][1]
    return None


def short_name(name: str) -> str:
    """First location of a TFLite tensor name, last three scopes: enough to find it."""
    first = name.split(";")[0]
    return "/".join(first.split("/")[-3:])


def _content_match(leaf: Leaf, role: str, key: Key, reference: dict[str, np.ndarray]) -> bool:
    from harness.weights.diff import reference_form

    ref = reference_form(reference, key.name)
    if ref is None:
        return False
    value, _ = _to_official(leaf, role, key)
    if value is None or value.value.shape != ref.shape:
        return False
    err = np.abs(value.value.astype(np.float64) - ref)
    return bool(np.all(err <= bound(value, ref) * 1.0001 + 1e-30))


def bound(v: Value, ref: np.ndarray | None = None) -> np.ndarray:
    """Per-element bound of the storage error of v (broadcast to its shape)."""
    mag = np.abs(v.value.astype(np.float64))
    b = v.rel * (1 + 2 * v.rel) * mag + v.abs  # |true| <= |stored|·(1 + rel)
    if v.rel:
        b = b + FLOOR.get(v.storage, 0.0)
    if v.step is not None:
        b = b + np.broadcast_to(v.step.astype(np.float64), v.value.shape) / 2 * (1 + 2.0 ** -16) \
            + 2.0 ** -22 * mag  # fp32 rounding of scale·q
    return np.broadcast_to(b, v.value.shape)


def _unmapped(leaf: Leaf, reason: str) -> dict:
    return {"file": leaf.graph.path.name, "tensor": leaf.sources[0].name,
            "shape": list(leaf.shape), "dtype": leaf.sources[0].type_name,
            "used_by": sorted({f"{op.code}:{slot}" for op, slot in leaf.consumers}),
            "reason": reason}


# Norm affines the converter can fold into the Linear that consumes the norm's output.
FOLDABLE = {"ff_norm": "ff.ff.0.proj"}


def _folds(ex: Extraction, namer: Namer) -> None:
    for module, params in namer.modules.items():
        last = module.rsplit(".", 1)[-1]
        if last not in FOLDABLE or role_of(module + ".") not in ex.roles:
            continue
        target = module.rsplit(".", 1)[0] + "." + FOLDABLE[last]
        if not any(k.name in ex.tensors for k in params.values()) and \
                f"{target}.weight" in ex.tensors and f"{target}.bias" in ex.tensors:
            ex.folded[module] = target


def load_config(spec: str | Path) -> ModelConfig:
    """A preset name, a checkpoint directory, or a model_config.json (t5/config.json beside it
    gives the T5 dimensions)."""
    spec = str(spec)
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    root = path if path.is_dir() else path.parent
    cfg_path = path / "model_config.json" if path.is_dir() else path
    try:
        if not cfg_path.exists():
            raise FileNotFoundError(cfg_path)
        official = json.loads(read_small(cfg_path, "model config"))  # never blocks on a FIFO
        t5_path = root / "t5" / "config.json"
        t5 = (T5Config.from_hf(json.loads(read_small(t5_path, "T5 config")))
              if t5_path.exists() else T5Config())
        return ModelConfig.from_official(official, t5)
    except FileNotFoundError:
        raise BadInput(cfg_path, f"no such file (--config takes {', '.join(PRESETS)}, a checkpoint "
                                 "directory or a model_config.json)") from None
    except (ValueError, KeyError, TypeError, OSError, RecursionError) as e:
        raise BadInput(cfg_path, f"not a stable-audio-tools model config ({e})") from None


def extract(path: str | Path, config: ModelConfig | None = None,
            reference: dict[str, np.ndarray] | None = None) -> Extraction:
    """Constant tensors of the TFLite file(s) under official names. Without a config, the
    preset whose tensors the files' scopes and shapes fit best is used."""
    files = tflite_files(path)
    graphs = {role: read_graph(p) for role, p in files.items()}
    configs = [config] if config is not None else list(PRESETS.values())
    best = None
    for cfg in configs:
        ex = Extraction(cfg, {r: str(p) for r, p in files.items()})
        namer = Namer(cfg)
        _map(graphs, namer, reference, ex)
        _folds(ex, namer)
        if best is None or len(ex.tensors) > len(best[0].tensors):
            best = (ex, namer)
    ex, namer = best
    if config is None and len(ex.unmapped) > len(ex.tensors):
        raise BadInput(path, f"the files fit none of the presets {', '.join(PRESETS)} (best: "
                             f"{ex.config.preset}, {len(ex.tensors)} tensors mapped, "
                             f"{len(ex.unmapped)} not); pass --config (a checkpoint dir or "
                             "model_config.json) or --reference")
    if not ex.tensors:
        raise BadInput(path, "no constant tensor maps to an official weight of the "
                             + ("given config" if config else " or ".join(PRESETS) + " preset")
                             + "; pass --config (a checkpoint dir or model_config.json)")
    folded_keys = {k.name for m in ex.folded for k in namer.modules[m].values()}
    ex.missing = [k for k in ex.expected() if k not in ex.tensors and k not in folded_keys]
    return ex


# -- the extracted file ----------------------------------------------------------------------

def write_extraction(ex: Extraction, out: str | Path) -> None:
    from harness.weights.safetensors_io import write_safetensors

    tensors: dict[str, np.ndarray] = {}
    meta = {}
    for name, v in ex.tensors.items():
        tensors[name] = v.value.astype(np.float32)
        if v.step is not None:
            tensors[STEP_PREFIX + name] = v.step.astype(np.float32)
        meta[name] = dict(ex.info[name], rel=v.rel, abs=v.abs)
    info = {"config": ex.config.to_official(), "t5_config": ex.config.t5.to_hf(),
            "files": ex.roles, "tensors": meta, "folded": ex.folded, "unmapped": ex.unmapped,
            "missing": ex.missing, "zero_biases": ex.zero_biases,
            "note": "weight-normed convs hold the fused weight g·v/‖v‖ as <module>.weight "
                    "(official layout); norms listed in `folded` live inside their Linear"}
    write_safetensors(out, tensors, {"format": FORMAT, "info": json.dumps(info)})


def read_extraction(path: str | Path) -> Extraction:
    from harness.weights.safetensors_io import read_header, read_safetensors

    _, meta, _ = read_header(path)
    if meta.get("format") != FORMAT:
        raise BadInput(path, f"not a `weights extract` file (format {meta.get('format')!r})")
    try:
        info = json.loads(meta["info"])
        cfg = ModelConfig.from_official(info["config"], T5Config.from_hf(info["t5_config"]))
    except (KeyError, ValueError, TypeError, RecursionError) as e:
        raise BadInput(path, f"damaged extraction metadata ({e})") from None
    raw = read_safetensors(path)
    ex = Extraction(cfg, info["files"], folded=info["folded"], unmapped=info["unmapped"],
                    missing=info["missing"], zero_biases=info["zero_biases"])
    for name, m in info["tensors"].items():
        if name not in raw:
            raise BadInput(path, f"tensor {name} listed in the metadata is missing")
        ex.tensors[name] = Value(raw[name], m["storage"], raw.get(STEP_PREFIX + name),
                                 float(m["rel"]), float(m["abs"]))
        ex.info[name] = {k: m[k] for k in ("file", "tflite", "storage", "how", "transform", "fused")}
    return ex
