"""Extraction: the constants of Arm's TFLite files under official names (`extract`), and the
`weights extract` file that stores them with their error model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import BadInput
from harness.files import read_small
from harness.model.config import PRESETS, ModelConfig, T5Config
from harness.weights.convert import reference_form
from harness.weights.safetensors_io import read_header, read_safetensors, write_safetensors
from harness.weights.tflite.dequant import Leaf, Value, bound, constant_leaves
from harness.weights.tflite.flatbuffer import Graph, read_graph
from harness.weights.tflite.layout import rope_tables, to_official
from harness.weights.tflite.names import (Key, Namer, by_scope, candidates, leaf_role,
                                          official_keys, role_of)

ARM_FILES = {"conditioners": "conditioners_float32.tflite", "dit": "dit_model.tflite",
             "autoencoder": "autoencoder_model.tflite"}
FORMAT = "sao-harness/tflite-weights/1"
STEP_PREFIX = "__step__."  # int8 quantization step of tensor X, broadcastable to X

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
    rope = rope_tables([l for _, l in leaves], namer)
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
        r = leaf_role(leaf)
        if r is None:
            pending.append((role, leaf, r))
            continue
        key = by_scope(namer, leaf, r)
        if key is not None:
            value, transform = to_official(leaf, r, key)
            if value is not None:
                take(key, value, leaf, "name", transform)
                continue
        pending.append((role, leaf, r))

    for role, leaf, r in pending:  # no usable scope: a unique (role, shape), else content
        if r == "bias" and not np.any(leaf.load().value):
            ex.zero_biases.append(f"{leaf.graph.path.name}:{leaf.tensor.name}")
            continue
        keys = [k for k in namer.keys.values() if k.name not in claimed and role_of(k.name) in
                (role, "other") and r is not None and k in candidates(namer, k.module, leaf, r)]
        how = "shape"
        if len(keys) > 1 and reference is not None:
            keys = [k for k in keys if _content_match(leaf, r, k, reference)]
            how = "content"
        if len(keys) == 1:
            value, transform = to_official(leaf, r, keys[0])
            if value is not None:
                take(keys[0], value, leaf, how, transform)
                continue
        reason = "no scope in its name and its role/shape fits " + (
            f"{len(keys)} tensors" if keys else "no expected tensor")
        ex.unmapped.append(_unmapped(leaf, reason))


def _content_match(leaf: Leaf, role: str, key: Key, reference: dict[str, np.ndarray]) -> bool:
    ref = reference_form(reference, key.name)
    if ref is None:
        return False
    value, _ = to_official(leaf, role, key)
    if value is None or value.value.shape != ref.shape:
        return False
    err = np.abs(value.value.astype(np.float64) - ref)
    return bool(np.all(err <= bound(value, ref) * 1.0001 + 1e-30))


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
