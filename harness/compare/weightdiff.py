"""The one weight comparator: are two sets of weights the same, and if not, what happened?

Two readings of the same question, over the same tensor names (official layout):

1. Checkpoint against approved checkpoint (the gate, `diff_weights`). Every tensor falls in
   one class:
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

2. Any two sides, up to the quantization one of them went through (`weights diff`, `run_diff`).
   A side is a checkpoint (directory or model.safetensors), a `weights extract` file, or a TFLite
   directory / .tflite file (extracted on the fly). Both sides are brought to one form before
   comparing: weight-normed convs fused (`fuse_pair`, norm per dim 0 of the stored tensor, so per
   *input* channel of a conv-transpose), and a norm that one side's converter folded into its
   Linear (ff_norm into ff.ff.0.proj: W·diag(γ), b + W·β) folded on the other side too.

   Per tensor: max abs error, relative error ‖a-b‖/‖ref‖, cosine, and the error the storage
   allows: int8 scale/2 per channel, fp16 half-ulp (2⁻¹¹·|w|), fp32 half-ulp, plus the fp32
   arithmetic of fusing/folding/inverting (bounded below). A tensor is the same when every element
   is within that bound; the verdict is `same weights` only when every compared tensor is, no
   TFLite constant is left unmapped and no expected tensor is missing from a TFLite side.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.compare.metrics import measure
from harness.errors import BadInput
from harness.model import prefixes
from harness.model.config import ModelConfig
from harness.weights.convert import fuse_pair
from harness.weights.load import T5_PREFIX, load_official, load_t5, open_checkpoint
from harness.weights.safetensors_io import dtype_names, read_header
from harness.weights.tflite.dequant import Value, bound
from harness.weights.tflite.extract import FORMAT, Extraction, extract, read_extraction, tflite_files
from harness.weights.tflite.names import short_name
from harness.weights.validate import T5_TIED


# -- checkpoint against checkpoint: classes and diagnosis -------------------------------------

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
        wc = fuse_pair(cg, cv)
        wb = fuse_pair(base[name], base[f"{module}.weight_v"])
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


# -- any two sides, within their storage error ------------------------------------------------

EPS32 = UNIT_ROUNDOFF["F32"]


@dataclass
class Side:
    path: str
    kind: str  # checkpoint | extracted | tflite
    config: ModelConfig | None
    tensors: dict[str, Value]
    extraction: Extraction | None = None
    dtypes: dict[str, str] = field(default_factory=dict)

    @property
    def folded(self) -> dict[str, str]:
        return self.extraction.folded if self.extraction else {}

    def describe(self) -> str:
        if self.kind == "checkpoint":
            return f"checkpoint ({self.config.preset}), {len(self.tensors)} tensors"
        ex = self.extraction
        storages = Counter(v.storage for v in self.tensors.values())
        what = "TFLite " + ", ".join(Path(p).name for p in ex.roles.values()) \
            if self.kind == "tflite" else "extracted from " + ", ".join(
                Path(p).name for p in ex.roles.values())
        return (f"{what} as {ex.config.preset}: {len(self.tensors)} tensors ("
                + ", ".join(f"{k} x{n}" for k, n in sorted(storages.items()))
                + f"), {len(ex.unmapped)} unmapped, {len(ex.missing)} missing")


def _checkpoint(path: Path) -> Side:
    ckpt = open_checkpoint(path)
    raw = load_official(ckpt)
    if ckpt.t5_dir is not None:  # T5 is not in model.safetensors; Arm's conditioners hold it
        raw.update({T5_PREFIX + k: v for k, v in load_t5(ckpt).items() if k != T5_TIED})
    tensors = {k: Value(v.astype(np.float32), "checkpoint") for k, v in raw.items()}
    return Side(str(path), "checkpoint", ckpt.config, tensors, dtypes=dtype_names(ckpt.model_file))


def _is_extraction(path: Path) -> bool:
    return read_header(path)[1].get("format") == FORMAT


def load_side(path: str | Path, config: ModelConfig | None = None,
              reference: dict[str, np.ndarray] | None = None) -> Side:
    path = Path(path)
    if path.is_dir() and (path / "model.safetensors").exists():
        return _checkpoint(path)
    if path.suffix == ".safetensors" and path.is_file():
        if _is_extraction(path):
            ex = read_extraction(path)
            return Side(str(path), "extracted", ex.config, ex.tensors, ex)
        return _checkpoint(path)
    if path.is_dir() or path.suffix == ".tflite":
        tflite_files(path)  # BadInput for a directory with neither
        ex = extract(path, config, reference)
        return Side(str(path), "tflite", ex.config, ex.tensors, ex)
    if not path.exists():
        raise BadInput(path, "no such file or directory")
    raise BadInput(path, "not a checkpoint, a `weights extract` .safetensors or a TFLite "
                         "directory/.tflite file")


# -- one comparison form ---------------------------------------------------------------------

def wn_allowance(v: np.ndarray) -> float:
    """Relative fp32 error of g·v/‖v‖ computed twice in different orders: a few roundings plus
    the sum of squares over n = elements per dim-0 slice (√n growth, 8x margin)."""
    n = v.size // v.shape[0]
    return 2.0 ** -20 + 8 * math.sqrt(n) * EPS32


@dataclass
class Entry:
    value: np.ndarray
    error: Value | None  # storage error model (None: exact)
    allowance: np.ndarray | float = 0.0  # arithmetic of fusing / folding on this side
    via: str | None = None


def comparison_form(side: Side, folds: dict[str, str]) -> tuple[dict[str, Entry], list[str]]:
    """Entries by comparison name, and the norm tensors that are compared through a fold."""
    t = side.tensors
    out: dict[str, Entry] = {}
    for name, v in t.items():
        if name.endswith(".weight_g"):
            continue
        if name.endswith(".weight_v"):
            module = name[: -len(".weight_v")]
            w = fuse_pair(t[f"{module}.weight_g"].value, v.value)
            out[f"{module}.weight"] = Entry(w, None, wn_allowance(v.value) * np.abs(w),
                                            "weight norm fused")
            continue
        out[name] = Entry(v.value, None if side.kind == "checkpoint" else v)
    via_fold = []
    for norm, linear in folds.items():
        if norm in side.folded:
            continue  # this side holds the folded Linear already
        p = {k.rsplit(".", 1)[1]: k for k in out if k.rsplit(".", 1)[0] == norm}
        gamma, beta = p.get("gamma") or p.get("weight"), p.get("beta") or p.get("bias")
        wk, bk = f"{linear}.weight", f"{linear}.bias"
        if not (gamma and beta and wk in out and bk in out):
            continue
        W = out[wk].value.astype(np.float64)
        g, b = out[gamma].value.astype(np.float64), out[beta].value.astype(np.float64)
        bias = out[bk].value.astype(np.float64)
        folded_b = bias + W @ b
        k = W.shape[1]
        # the converter's fp32 dot product of length k: √k growth of roundings, 8x margin
        b_allow = 8 * math.sqrt(k) * EPS32 * (np.abs(bias) + np.abs(W) @ np.abs(b)) \
            + EPS32 * np.abs(folded_b)
        out[wk] = Entry(W * g[None, :], out[wk].error, 2.0 ** -22 * np.abs(W * g[None, :]),
                        f"{norm} folded")
        out[bk] = Entry(folded_b, out[bk].error, b_allow, f"{norm} folded")
        for key in (gamma, beta):
            del out[key]
            via_fold.append(key)
    return out, via_fold


# -- comparing -------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    shape: tuple
    storage: str
    max_abs: float
    rel: float
    cosine: float
    expected: float  # largest per-element bound
    ratio: float     # max over elements of error / bound (<= 1: same)
    same: bool
    note: str | None = None

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self.__dict__.items()} | {"shape": list(self.shape)}


def _storage(e: Entry) -> str:
    return e.error.storage if e.error is not None else "exact"


def compare_entry(name: str, a: Entry, b: Entry, ref_is_b: bool = True) -> Result:
    storage = "/".join(s for s in (_storage(a), _storage(b)) if s != "exact") or "exact"
    av, bv = a.value.astype(np.float64), b.value.astype(np.float64)
    if av.shape != bv.shape:
        return Result(name, av.shape, storage, math.inf, math.inf, math.nan, 0.0, math.inf, False,
                      f"shape {av.shape} vs {bv.shape}")
    bnd = np.zeros(av.shape)
    for e in (a, b):
        if e.error is not None:
            bnd = bnd + bound(e.error)
        bnd = bnd + e.allowance
    err = np.abs(av - bv)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(err == 0, 0.0, err / bnd)
    ratio = float(ratios.max()) if ratios.size else 0.0
    ref = bv if ref_is_b else av
    nref = float(np.linalg.norm(ref))
    rel = float(np.linalg.norm(av - bv) / nref) if nref else (0.0 if not err.any() else math.inf)
    na, nb = float(np.linalg.norm(av)), float(np.linalg.norm(bv))
    cos = float(np.vdot(av, bv) / (na * nb)) if na and nb else (1.0 if na == nb else 0.0)
    via = a.via or b.via
    return Result(name, av.shape, storage, float(err.max()) if err.size else 0.0, rel, cos,
                  float(bnd.max()) if bnd.size else 0.0, ratio, ratio <= 1.0, via)


@dataclass
class Diff:
    a: Side
    b: Side
    results: list[Result]
    only_a: list[str]
    only_b: list[str]
    via_fold: list[str]
    unmapped: list[dict]
    missing: list[str]

    @property
    def different(self) -> list[Result]:
        return [r for r in self.results if not r.same]

    @property
    def same(self) -> bool:
        return not self.different and not self.unmapped and not self.missing

    def quantization(self) -> str:
        kinds = {s for r in self.results for s in r.storage.split("/")}
        q = [n for n, k in (("int8", "int8"), ("fp16", "float16"), ("bf16", "bfloat16"))
             if k in kinds]
        return f"within {'/'.join(q)} quantization" if q else "within fp32 rounding"

    def verdict(self) -> str:
        if self.same:
            return f"same weights ({self.quantization()})"
        return "different weights"

    def as_dict(self) -> dict:
        return {"verdict": "same" if self.same else "different", "summary": self.verdict(),
                "a": _side_dict(self.a), "b": _side_dict(self.b),
                "compared": len(self.results), "different": [r.name for r in self.different],
                "tensors": [r.as_dict() for r in self.results],
                "only_in_a": self.only_a, "only_in_b": self.only_b,
                "compared_through_fold": self.via_fold,
                "unmapped": self.unmapped, "missing": self.missing}


def _side_dict(s: Side) -> dict:
    d = {"path": s.path, "kind": s.kind, "preset": s.config.preset if s.config else None,
         "tensors": len(s.tensors)}
    if s.extraction:
        d.update(folded=s.extraction.folded, zero_biases=s.extraction.zero_biases)
    return d


def diff(a: Side, b: Side) -> Diff:
    folds = {**a.folded, **b.folded}
    fa, via_a = comparison_form(a, folds)
    fb, via_b = comparison_form(b, folds)
    common = [n for n in fa if n in fb]
    if not common:
        raise BadInput(b.path, f"shares no tensor name with {a.path}: nothing to compare")
    ref_is_b = not (a.kind == "checkpoint" and b.kind != "checkpoint")
    results = [compare_entry(n, fa[n], fb[n], ref_is_b) for n in common]
    unmapped, missing = [], []
    for s, other in ((a, fb), (b, fa)):
        if s.extraction is not None:
            unmapped += [dict(u, side=s.path) for u in s.extraction.unmapped]
            missing += [m for m in s.extraction.missing if m in other
                        or f"{m.rsplit('.', 1)[0]}.weight_v" in other]
    return Diff(a, b, results, [n for n in fa if n not in fb], [n for n in fb if n not in fa],
                sorted(set(via_a + via_b)), unmapped, missing)


# -- text report -----------------------------------------------------------------------------

def _groups(names: list[str]) -> str:
    groups = (prefixes.DIT, prefixes.T5, prefixes.SECONDS, prefixes.ENCODER, prefixes.DECODER)
    c = Counter(next((p for p in groups if n.startswith(p)), n.split(".")[0]) for n in names)
    return ", ".join(f"{p} {n}" for p, n in c.most_common())


def _row(r: Result) -> str:
    note = f"  [{r.note}]" if r.note else ""
    return (f"  {r.name}  {r.storage}  max abs {r.max_abs:.3g}  rel {r.rel:.3g}  "
            f"cos {r.cosine:.7f}  allowed {r.expected:.3g}  error/allowed {r.ratio:.4g}{note}")


def report(d: Diff, show: int = 10) -> str:
    lines = [f"A: {d.a.path}: {d.a.describe()}", f"B: {d.b.path}: {d.b.describe()}"]
    folded = {**d.a.folded, **d.b.folded}
    notes = []
    if any(r.note == "weight norm fused" for r in d.results) or any(
            (s.extraction and any(i.get("fused") for i in s.extraction.info.values()))
            for s in (d.a, d.b)):
        notes.append("weight norm fused (w = g·v/‖v‖)")
    if folded:
        norm, linear = next(iter(folded.items()))
        notes.append(f"{len(folded)} norm(s) compared folded into their Linear, as the "
                     f"converter stored them (e.g. {norm} -> {linear})")
    lines.append(f"compared {len(d.results)} tensors, {len(d.different)} different"
                 + (f"; {'; '.join(notes)}" if notes else ""))
    if d.only_a or d.only_b:
        lines.append("not compared: "
                     + "; ".join(f"{len(x)} only in {s} ({_groups(x)})"
                                 for x, s in ((d.only_a, "A"), (d.only_b, "B")) if x))
    if d.different:
        lines.append("different tensors:")
        lines += [_row(r) for r in sorted(d.different, key=lambda r: -r.ratio)[:show]]
        if len(d.different) > show:
            lines.append(f"  ... and {len(d.different) - show} more (--show N, or --json)")
    same = sorted((r for r in d.results if r.same), key=lambda r: -r.ratio)
    if same and show:
        lines.append(f"closest to their bound among the {len(same)} same tensors:")
        lines += [_row(r) for r in same[: min(show, 5)]]
    for u in d.unmapped[:show]:
        lines.append(f"unmapped in {u['side']}: {u['file']}:{short_name(u['tensor'])} {u['shape']} "
                     f"{u['dtype']} ({u['reason']})")
    if len(d.unmapped) > show:
        lines.append(f"... and {len(d.unmapped) - show} more unmapped")
    if d.missing:
        lines.append(f"missing from the TFLite side: {len(d.missing)} expected tensors "
                     f"(e.g. {', '.join(d.missing[:3])})")
    lines.append(f"verdict: {d.verdict()}")
    return "\n".join(lines)


def run_diff(a: str | Path, b: str | Path, config: ModelConfig | None = None) -> Diff:
    """Load both sides (a checkpoint first, so a TFLite side is mapped with its config and,
    where names and shapes leave a choice, its content) and compare them."""
    paths = [Path(a), Path(b)]
    kinds = [_kind(p) for p in paths]
    sides: list[Side | None] = [None, None]
    for i in sorted(range(2), key=lambda i: kinds[i] != "checkpoint"):
        other = sides[1 - i]
        cfg = config or (other.config if other is not None else None)
        ref = ({k: v.value for k, v in other.tensors.items()}
               if other is not None and other.kind == "checkpoint" else None)
        sides[i] = load_side(paths[i], cfg, ref)
    return diff(sides[0], sides[1])


def _kind(p: Path) -> str:
    if p.is_dir() and (p / "model.safetensors").exists():
        return "checkpoint"
    if p.suffix == ".safetensors" and p.is_file() and not _is_extraction(p):
        return "checkpoint"
    return "other"
