"""Golden store: golden/<case>/tensors.safetensors + manifest.json, written atomically and
loaded only after full verification (every tensor's sha256, dtype and shape).

Torch-free on purpose: the default test env verifies goldens that the reference env recorded.
A tensor's hash is sha256 of its C-order little-endian bytes; dtype and shape are checked
separately, so a reshaped or retyped tensor with equal bytes is still caught.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import settings
from harness.errors import BadInput, one_line
from harness.files import read_json_object
from harness.model import prefixes
from harness.weights.safetensors_io import read_safetensors, write_safetensors

FORMAT = "sao-harness-golden/1"
TENSORS_FILE = "tensors.safetensors"
MANIFEST_FILE = "manifest.json"
PRODUCERS = ("torch", "litert", "arm-tflite")
DEFAULT_ROOT = settings.golden_dir()
REQUIRED = ("format", "case", "producer", "tolerance_class", "order", "tensors", "inputs")


def tensor_sha256(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return hashlib.sha256(a.tobytes()).hexdigest()


def group_of(name: str) -> str:
    """Coarse tensor group, used for tolerance tables and per-group reports: the model part
    (prefixes.part_of: input, t5, conditioner, dit, sampler, vae), with the DiT split."""
    part = prefixes.part_of(name) or "other"
    if part == "dit":
        # the CFG-combined `model.model.cfg` IS the sampler's v; at sampler step i >= 1 (`@i`)
        # the DiT's input x carries the sampling error of the steps before it
        if name.split("@")[0] == f"{prefixes.DIT}.cfg":
            return "sampler"
        return "dit-steps" if "@" in name else "dit"
    return part


@dataclass
class Golden:
    path: Path
    manifest: dict
    tensors: "OrderedDict[str, np.ndarray]"

    @property
    def case(self) -> str:
        return self.manifest["case"]

    @property
    def producer(self) -> str:
        return self.manifest["producer"]

    @property
    def preset(self) -> str | None:
        """The synth preset the golden was recorded from (None: a user's real weights)."""
        return (self.manifest.get("weights") or {}).get("preset")

    def __getitem__(self, name: str) -> np.ndarray:
        return self.tensors[name]


def build_manifest(case: str, producer: str, tensors: "OrderedDict[str, np.ndarray]",
                   tolerance_class: str, **extra) -> dict:
    if producer not in PRODUCERS:
        raise ValueError(f"producer must be one of {PRODUCERS}")
    entries = OrderedDict((name, {"sha256": tensor_sha256(a), "dtype": a.dtype.name,
                                  "shape": list(a.shape), "group": group_of(name)})
                          for name, a in tensors.items())
    return {"format": FORMAT, "case": case, "producer": producer,
            "tolerance_class": tolerance_class,
            "inputs": {n: e["sha256"] for n, e in entries.items() if e["group"] == "input"},
            **extra, "order": list(tensors), "tensors": entries}


def write_golden(root: str | Path, case: str, tensors: "OrderedDict[str, np.ndarray]",
                 manifest: dict, overwrite: bool = False) -> Path:
    """Write <root>/<case>/ via a temp dir renamed into place: never half-written."""
    if not case or "/" in case or case.startswith("."):
        raise BadInput(None, f"bad case name {case!r}")
    root = Path(root)
    dest = root / case
    if dest.exists() and not overwrite:
        raise BadInput(dest, "golden case exists; pass --force to replace it")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{case}.tmp."))
    try:
        write_safetensors(tmp / TENSORS_FILE, tensors)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
        check_golden(tmp, case)  # read back before it takes the real name
        tmp.chmod(0o755)  # mkdtemp makes 0700; goldens are shared data
        for f in (TENSORS_FILE, MANIFEST_FILE):
            (tmp / f).chmod(0o644)
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=root, prefix=f".{case}.old."))
            os.replace(dest, old / case)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _read_manifest(path: Path) -> dict:
    mpath = path / MANIFEST_FILE
    if not mpath.exists() and not mpath.is_symlink():
        raise BadInput(mpath, "missing")
    manifest = read_json_object(mpath, "golden manifest")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise BadInput(mpath, f"lacks field {missing[0]!r}")
    _check_types(mpath, manifest)
    if manifest["format"] != FORMAT:
        raise BadInput(mpath, f"format {manifest['format']!r}, expected {FORMAT!r}")
    if manifest["producer"] not in PRODUCERS:
        raise BadInput(mpath, f"unknown producer {manifest['producer']!r}")
    if list(manifest["order"]) != list(manifest["tensors"]):
        raise BadInput(mpath, "order does not list exactly the tensors, in their order")
    return manifest


def _check_types(mpath: Path, m: dict) -> None:
    """The fields the store reads, with the types it reads them as (one line per fault)."""
    def bad(field: str, want: str):
        raise BadInput(mpath, f"field {field} must be {want}, got {one_line(repr(m.get(field)))[:80]}")

    for k in ("format", "case", "producer", "tolerance_class"):
        if not isinstance(m[k], str):
            bad(k, "a string")
    if not isinstance(m["order"], list) or not all(isinstance(x, str) for x in m["order"]):
        bad("order", "a list of tensor names")
    if not isinstance(m["tensors"], dict):
        bad("tensors", "an object")
    for name, e in m["tensors"].items():
        if (not isinstance(e, dict) or not isinstance(e.get("dtype"), str)
                or not isinstance(e.get("sha256"), str) or not isinstance(e.get("shape"), list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                           for d in e["shape"])):
            raise BadInput(mpath, f"tensor {name}: entry must hold dtype and sha256 strings and "
                                  f"a shape of non-negative integers")
    if not isinstance(m["inputs"], dict) or not all(isinstance(v, str)
                                                    for v in m["inputs"].values()):
        bad("inputs", "an object of sha256 strings")
    w = m.get("weights", {})
    if not isinstance(w, dict) or not isinstance(w.get("sha256", {}), dict):
        bad("weights", "an object with a sha256 object")


def check_golden(path: str | Path, case: str | None = None) -> Golden:
    """Load and verify one case directory; any fault is BadInput naming file and tensor."""
    path = Path(path)
    if not path.is_dir():
        if path.parent == settings.PACKAGED_GOLDEN:
            raise BadInput(path, "golden case not in this install (it ships the tiny goldens "
                                 f"only): point {settings.GOLDEN_DIR} or --golden-dir at a "
                                 "checkout's golden/")
        raise BadInput(path, "golden case directory does not exist")
    manifest = _read_manifest(path)
    if case is not None and manifest["case"] != case:
        raise BadInput(path / MANIFEST_FILE, f"names case {manifest['case']!r}, not {case!r}")
    tpath = path / TENSORS_FILE
    if not tpath.exists() and not tpath.is_symlink():
        raise BadInput(tpath, "missing")
    data = read_safetensors(tpath, check_finite=False)  # a golden may record a NaN output
    expected = manifest["tensors"]
    for name in expected:
        if name not in data:
            raise BadInput(tpath, f"tensor {name} listed in the manifest is missing")
    for name in data:
        if name not in expected:
            raise BadInput(tpath, f"tensor {name} is not in the manifest")
    tensors = OrderedDict()
    for name, entry in expected.items():
        a = data[name]
        if a.dtype.name != entry["dtype"] or list(a.shape) != list(entry["shape"]):
            raise BadInput(tpath, f"tensor {name} is {a.dtype.name}{list(a.shape)}, manifest "
                                  f"says {entry['dtype']}{list(entry['shape'])}")
        if tensor_sha256(a) != entry["sha256"]:
            raise BadInput(tpath, f"tensor {name} sha256 mismatch (corrupted or edited)")
        tensors[name] = a
    for name, digest in manifest["inputs"].items():
        if expected.get(name, {}).get("sha256") != digest:
            raise BadInput(path / MANIFEST_FILE, f"input {name} hash disagrees with its tensor")
    return Golden(path, manifest, tensors)


def load_golden(case: str, root: str | Path = DEFAULT_ROOT) -> Golden:
    return check_golden(Path(root) / case, case)


def case_dirs(root: str | Path = DEFAULT_ROOT) -> list[Path]:
    """Case directories under root: those holding a manifest or a tensors file (so a case that
    lost one of the two is still found and reported). Root itself may be such a case."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(root, "golden directory does not exist")
    if (root / MANIFEST_FILE).exists() or (root / TENSORS_FILE).exists():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and ((p / MANIFEST_FILE).exists() or (p / TENSORS_FILE).exists()))
