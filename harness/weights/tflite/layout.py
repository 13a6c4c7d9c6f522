"""Undo what the converter did to a constant's layout and meaning: CONV_2D OHWI (out, 1, k, in)
-> torch conv (out, in, k) or conv-transpose (in, out, k); SnakeBeta's folded exp(alpha) and
1/(exp(beta)+eps) -> alpha, beta; RoPE cos/sin tables -> inv_freq."""

from __future__ import annotations

import numpy as np

from harness.model import prefixes
from harness.weights.tflite.dequant import Leaf, Value
from harness.weights.tflite.names import Key, Namer, leaf_role

SNAKE_EPS = 1e-9  # SnakeBeta: x + 1/(exp(beta) + 1e-9) * sin(exp(alpha) x)^2
# fp32 arithmetic allowed on top for a value the converter computed (exp, cos) and we invert.
CALC_ABS = 2.0 ** -21

def _conv_layout(v: Value, kind: str) -> Value | None:
    """OHWI with H or W of 1 -> (O, K, I) -> torch conv (O, I, K) or conv-transpose (I, O, K)."""
    if v.value.ndim != 4 or 1 not in v.value.shape[1:3]:
        return None
    squeeze = 1 if v.value.shape[1] == 1 else 2
    perm = (0, 2, 1) if kind == "conv" else (2, 0, 1)
    return v.apply(lambda a: np.take(a, 0, axis=squeeze).transpose(perm))


def to_official(leaf: Leaf, role: str, key: Key) -> tuple[Value, str | None]:
    """The leaf's value in the official layout and meaning, and the transform undone."""
    v = leaf.load()
    if role in ("conv_w", "convT_w"):
        return _conv_layout(v, key.kind), None
    v = v.apply(lambda a: a.reshape(key.shape))
    if key.param in ("alpha", "beta") and prefixes.part_of(key.module) == "vae":
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


def rope_tables(leaves: list[Leaf], namer: Namer) -> dict[int, tuple[Key, Value, Leaf]]:
    """cos/sin tables of positions 0..P-1 over cat(f, f): inv_freq f = atan2(sin[1], cos[1])."""
    keys = [k for k in namer.keys.values() if k.name.endswith("rotary_pos_emb.inv_freq")]
    tables = [l for l in leaves if len(l.shape) == 2 and l.shape[0] >= 2 and l.shape[1] % 2 == 0
              and l.shape[1] // 2 in {k.shape[0] for k in keys} and leaf_role(l) == "mul"]
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


