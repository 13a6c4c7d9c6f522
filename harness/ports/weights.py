"""The port's converted weights vs the official checkpoint: names, layout, weight norm, dtype.

A returned tensor must equal the official one within the rounding its storage dtype allows
(half an ulp of the port's dtype), plus, where the port fused weight norm (`<module>.weight`
for the checkpoint's weight_g/weight_v), the fusion's own fp32 arithmetic (the allowance
`weights diff` uses). Official tensors the port does not return are counted, not judged.

Full size holds ~2.4 GB of fp32: the adapter's process writes its tensors to a safetensors file
(`dump`) and both sides are read one tensor at a time (`LazyTensors`), never all at once.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from harness.compare.metrics import measure
from harness.compare.weightdiff import wn_allowance
from harness.ports.result import FAIL, PASS, StageResult, TensorRow
from harness.weights.convert import fuse_pair
from harness.weights.load import T5_PREFIX
from harness.weights.safetensors_io import DTYPES, LazyTensors
from harness.weights.validate import T5_TIED


SAFETENSORS_DTYPE = {np.dtype(t).name: k for k, t in DTYPES.items() if k != "BF16"}


def dump(tensors, path: Path) -> None:
    """Write {name: array} as safetensors, tensor by tensor (no second copy of the whole)."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"converted_weights() returned {type(tensors).__name__}, not a dict")
    arrays, header, offset = {}, {}, 0
    for name, value in tensors.items():
        a = np.ascontiguousarray(np.asarray(value))
        if a.dtype.name not in SAFETENSORS_DTYPE:
            raise TypeError(f"tensor {name} has dtype {a.dtype.name}")
        header[str(name)] = {"dtype": SAFETENSORS_DTYPE[a.dtype.name], "shape": list(a.shape),
                             "data_offsets": [offset, offset + a.nbytes]}
        arrays[name], offset = a, offset + a.nbytes
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for a in arrays.values():
            f.write(a.data)


def official_tensors(ckpt) -> LazyTensors:
    """Checkpoint tensors under official names, T5 under the prompt conditioner's path."""
    files = [(ckpt.model_file, "")]
    if ckpt.t5_dir is not None:
        files.append((ckpt.t5_dir / "model.safetensors", T5_PREFIX))
    out = LazyTensors(files, check_finite=False)
    tied, shared = T5_PREFIX + T5_TIED, T5_PREFIX + "shared.weight"
    if tied not in out and shared in out:
        out.alias(tied, shared)
    return out


def expected(official: dict[str, np.ndarray], name: str):
    """(official value as float64, extra relative allowance, how) or None if unmapped."""
    if name in official:
        return official[name].astype(np.float64), 0.0, "as stored"
    module = name.rsplit(".", 1)[0]
    if name.endswith(".weight") and f"{module}.weight_g" in official \
            and f"{module}.weight_v" in official:
        v = official[f"{module}.weight_v"]
        return (fuse_pair(official[f"{module}.weight_g"], v).astype(np.float64),
                wn_allowance(v), "weight norm fused")
    return None


def official_names(official: dict[str, np.ndarray]) -> list[str]:
    """Names a port may return: weight_g/weight_v pairs as their fused `.weight`."""
    names = [n[: -len("_v")] if n.endswith(".weight_v") else n for n in official
             if not n.endswith(".weight_g") and n != T5_PREFIX + T5_TIED]
    return names


def compare_weights(port_file: Path, ckpt):
    """The port's dumped tensors (`dump`) against the checkpoint: a converted_weights result."""
    port = LazyTensors([(port_file, "")], check_finite=False)
    official = official_tensors(ckpt)
    order = {n: i for i, n in enumerate(official)}
    rows, faults, fused, dtypes = [], [], 0, {}

    def key(n):  # official order; a fused weight sits where its weight_g/weight_v sit
        return order.get(n, order.get(n[: -len("weight")] + "weight_v", len(order)))

    for name in sorted(port, key=key):
        a = np.asarray(port[name])
        exp = expected(official, name)
        if exp is None:
            faults.append((name, "no official tensor of that name (unmapped)", None))
            continue
        e, rel, how = exp
        fused += how != "as stored"
        dtypes[a.dtype.name] = dtypes.get(a.dtype.name, 0) + 1
        if a.shape != e.shape:
            faults.append((name, f"shape {list(a.shape)}, official {list(e.shape)} "
                                 "(layout not undone?)", None))
            continue
        if a.dtype.kind != "f":
            faults.append((name, f"dtype {a.dtype.name}", None))
            continue
        m = measure(a, e)
        allowed = np.abs(e) * (np.finfo(a.dtype).eps / 2 + rel) + np.finfo(a.dtype).tiny
        err = np.abs(a.astype(np.float64) - e)
        ok = bool(np.all(err <= allowed))
        rows.append(TensorRow(name, m, float("nan"), ok, "" if ok else
                              f"max |error| {err.max():.3g}, {float(np.max(err / allowed)):.3g}x "
                              f"the {a.dtype.name} rounding allowance, SNR {m.snr_db:.1f} dB"))
        if not ok:
            faults.append((name, rows[-1].why, m.snr_db))
    missing = len([n for n in official_names(official) if n not in port and n + "_v" not in port])
    summary = (f"{len(port)} tensors returned ({fused} with weight norm fused; dtypes "
               f"{', '.join(f'{k} x{v}' for k, v in sorted(dtypes.items()))}); "
               f"{missing} official tensors not returned (not compared)")
    if faults:
        name, why, snr = faults[0]
        return StageResult("converted_weights", FAIL, f"first divergence: {name} ({why}); "
                           f"{len(faults)} tensors differ; {summary}", name, "local", snr,
                           rows=rows)
    return StageResult("converted_weights", PASS, f"every returned tensor equals the official "
                       f"one within its storage rounding; {summary}", rows=rows)
