"""Float constants of a graph: int8 (per-channel or per-tensor scale, zero point), fp16 and
bf16 dequantized, pass-through ops on constants (DEQUANTIZE, TRANSPOSE, RESHAPE, ...) folded,
each with the error its storage allows (`bound`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from harness.weights.tflite.flatbuffer import Graph, Op, Tensor

# Rounding a value x into each float storage type moves it by at most REL·|x| (half an ulp),
# or half the subnormal spacing, FLOOR, for values below the normal range.
REL = {"float32": 2.0 ** -24, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8, "int8": 0.0}
FLOOR = {"float32": 2.0 ** -150, "float16": 2.0 ** -25, "bfloat16": 2.0 ** -134, "int8": 0.0}

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


