"""Tensor-by-tensor comparison of a candidate checkpoint with the approved one.

Every tensor falls in one class:

- identical:   bit-equal once both are widened to float32 (key order, re-save, fp16 -> fp32);
- rounded:     equal to the other's rounding to the lower-precision stored dtype (an fp16 or
               bf16 re-encode, either direction);
- reparam:     a weight-norm pair whose g and v changed but whose fused weight g·v/‖v‖ did
               not (beyond the stored dtypes' rounding): the same conv, stored another way;
- changed:     anything else, with a diagnosis of the usual export faults (transposed, chunks
               of a fused projection swapped, scaled, weight norm over the wrong dim, values
               from another checkpoint).

Structurally valid faults (same shapes and dtypes) are invisible to the strict loader; this
names the tensor, and the drift stage says what it does to the outputs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from harness.compare.metrics import measure

IDENTICAL, ROUNDED, REPARAM, CHANGED = "identical", "rounded", "reparam", "changed"

# Fused projections, chunked along dim 0 (official layout): chunk names for the diagnosis.
CHUNKS = {"to_qkv.weight": ("q", "k", "v"), "to_kv.weight": ("k", "v"),
          "proj.weight": ("value", "gate"), "proj.bias": ("value", "gate")}


@dataclass
class TensorDiff:
    name: str
    kind: str
    detail: str
    snr_db: float    # of the candidate against the approved tensor
    max_abs: float
    rounding: str | None = None  # ROUNDED/REPARAM: the coarser stored dtype (F32, F16, BF16)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "detail": self.detail,
                "snr_db": _json_float(self.snr_db), "max_abs": self.max_abs}


def _json_float(v: float):
    return v if np.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")


def snr_db(x: np.ndarray, ref: np.ndarray) -> float:
    """SNR of x against ref in dB (the golden comparison's metric: inf when equal)."""
    return measure(x, ref).snr_db


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values rounded to the stored dtype `dtype` (F32, F16, BF16) and widened back."""
    x = np.asarray(x, np.float32)
    if dtype == "F16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)
    if dtype == "BF16":  # round to nearest even on the top 16 bits
        bits = x.view(np.uint32).astype(np.uint64)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
        return (bits & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return x


PRECISION = {"F32": 3, "BF16": 1, "F16": 2}  # mantissa rank: lower = coarser
UNIT_ROUNDOFF = {"F32": 2.0 ** -24, "F16": 2.0 ** -11, "BF16": 2.0 ** -8}


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to fp16-level rounding (so faults are recognised in re-encoded files too)."""
    scale = float(np.max(np.abs(b))) or 1.0
    return a.shape == b.shape and float(np.max(np.abs(a - b))) <= 2.0 ** -9 * scale


def diagnose(name: str, c: np.ndarray, b: np.ndarray) -> str:
    """What happened to a changed tensor (c candidate, b approved; float32, same shape)."""
    if c.ndim == 2 and c.shape[0] == c.shape[1] and _close(c, b.T):
        return "transposed (candidate equals the approved tensor's transpose)"
    names = next((v for k, v in CHUNKS.items() if name.endswith(k)), None)
    for n in ((len(names),) if names else (3, 2)):
        if c.shape[0] % n or c.shape[0] < n:
            continue
        parts = np.split(b, n, axis=0)
        for order in itertools.permutations(range(n)):
            if order != tuple(range(n)) and _close(c, np.concatenate([parts[i] for i in order])):
                labels = names or tuple(f"chunk{i}" for i in range(n))
                moved = [f"{labels[i]}" for i in range(n) if order[i] != i]
                return (f"{'/'.join(moved)} chunks swapped along dim 0 (candidate order "
                        f"{'|'.join(labels[i] for i in order)}, expected {'|'.join(labels)})")
    bb = float(np.sum(b.astype(np.float64) ** 2))
    if bb > 0:
        k = float(np.sum(c.astype(np.float64) * b) / bb)
        if abs(k - 1.0) > 1e-6 and _close(c, (k * b).astype(np.float32)):
            return f"scaled by {k:.6g}"
    cf, bf = c.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if cf.size > 8 and cf.std() > 0 and bf.std() > 0:
        corr = float(np.corrcoef(cf, bf)[0, 1])
        if abs(corr) < 0.2:
            return f"replaced by unrelated values (correlation {corr:+.3f} with the approved tensor)"
    return "values changed"


def _norm_over_all_but(v: np.ndarray, dim: int) -> np.ndarray:
    axes = tuple(i for i in range(v.ndim) if i != dim)
    return np.sqrt(np.sum(v.astype(np.float64) ** 2, axis=axes))


def diagnose_weight_norm(g: np.ndarray, v: np.ndarray) -> str | None:
    """g computed as the norm of v over the wrong dim (stored g must be per dim 0)."""
    flat = g.ravel().astype(np.float64)
    if np.allclose(flat, _norm_over_all_but(v, 0), rtol=2e-3, atol=0):
        return None
    for dim in range(1, v.ndim):
        if v.shape[dim] == flat.size and np.allclose(flat, _norm_over_all_but(v, dim),
                                                     rtol=2e-3, atol=0):
            return (f"weight_g is the norm of weight_v per dim {dim}; weight norm is per dim 0 "
                    f"of the stored tensor (for a ConvTranspose1d, the input channel)")
    return None


def fused(g: np.ndarray, v: np.ndarray) -> np.ndarray:
    from harness.weights.convert import fuse_pair
    return fuse_pair(g, v)


def classify(name: str, c: np.ndarray, c_dtype: str, b: np.ndarray, b_dtype: str) -> TensorDiff:
    c32, b32 = np.asarray(c, np.float32), np.asarray(b, np.float32)
    snr = snr_db(c32, b32)
    max_abs = float(np.max(np.abs(c32 - b32))) if c32.size else 0.0
    if np.array_equal(c32.view(np.uint32), b32.view(np.uint32)):
        return TensorDiff(name, IDENTICAL, f"{b_dtype}->{c_dtype}" if c_dtype != b_dtype
                          else "bit-identical", snr, max_abs)
    coarse = c_dtype if PRECISION.get(c_dtype, 3) <= PRECISION.get(b_dtype, 3) else b_dtype
    if coarse != "F32" and np.array_equal(round_to(c32, coarse), round_to(b32, coarse)):
        return TensorDiff(name, ROUNDED, f"{b_dtype}->{c_dtype} rounding", snr, max_abs, coarse)
    return TensorDiff(name, CHANGED, diagnose(name, c32, b32), snr, max_abs)


def diff_weights(cand: dict[str, np.ndarray], cand_dtypes: dict[str, str],
                 base: dict[str, np.ndarray], base_dtypes: dict[str, str]) -> list[TensorDiff]:
    """One TensorDiff per tensor present in both (the key sets were checked beforehand)."""
    out = {n: classify(n, cand[n], cand_dtypes[n], base[n], base_dtypes[n])
           for n in base if n in cand}
    for name in [n for n in out if n.endswith(".weight_g")]:
        module = name[: -len(".weight_g")]
        g, v = out[name], out.get(f"{module}.weight_v")
        if v is None or (g.kind != CHANGED and v.kind != CHANGED):
            continue
        cg, cv = cand[name], cand[f"{module}.weight_v"]
        wrong_dim = diagnose_weight_norm(cg, cv)
        if wrong_dim:
            out[name] = TensorDiff(name, CHANGED, wrong_dim, g.snr_db, g.max_abs)
            continue
        wc = fused(cg, cv)
        wb = fused(base[name], base[f"{module}.weight_v"])
        dtypes = [cand_dtypes[name], cand_dtypes[f"{module}.weight_v"],
                  base_dtypes[name], base_dtypes[f"{module}.weight_v"]]
        # g and v each carry one rounding of the coarsest stored dtype; fusing adds a few.
        coarse = min(dtypes, key=lambda d: PRECISION.get(d, 3))
        eps = 4 * UNIT_ROUNDOFF[coarse]
        if np.all(np.abs(wc - wb) <= eps * np.abs(wb) + 1e-30):
            for key, d in ((name, g), (f"{module}.weight_v", v)):
                out[key] = TensorDiff(key, REPARAM, f"weight-norm re-parameterized; fused weight "
                                      f"equal up to {coarse} rounding", d.snr_db, d.max_abs, coarse)
    return list(out.values())


def summarize(diffs: list[TensorDiff]) -> dict[str, int]:
    counts = {k: 0 for k in (IDENTICAL, ROUNDED, REPARAM, CHANGED)}
    for d in diffs:
        counts[d.kind] += 1
    return counts
