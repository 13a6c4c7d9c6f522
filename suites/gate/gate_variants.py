"""Re-encodings and corruptions of an approved checkpoint, written as real files.

Shared by the gate tests and tools/calibrate_gate_drift.py. Each function copies the checkpoint
directory `src` to `dst` and rewrites its model.safetensors; the safetensors header is
written here byte by byte (own key order, BF16 support), not through the library.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np

from harness.compare.weightdiff import round_to
from harness.weights.safetensors_io import dtype_names, read_header, read_safetensors

DIT = "model.model."
VAE = "pretransform.model."
SQUARE = "model.model.transformer.layers.0.cross_attn.to_q.weight"
QKV = "model.model.transformer.layers.0.self_attn.to_qkv.weight"
FF_OUT = "model.model.transformer.layers.1.ff.ff.2.weight"
FOREIGN = "model.model.transformer.layers.1.cross_attn.to_kv.weight"
CONVT = "pretransform.model.decoder.layers.3.layers.1"  # tiny: ConvTranspose1d 8 -> 8, stride 2
NAN_KEY = "model.model.transformer.layers.1.self_attn.to_out.weight"

_NP = {"F32": np.float32, "F16": np.float16}


def read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """float32 tensors (values not checked: corruptions may hold NaN) and stored dtypes."""
    t = read_safetensors(path, check_finite=False)
    return {k: v.astype(np.float32) for k, v in t.items()}, dtype_names(path)


def write_raw(path: Path, tensors: dict[str, np.ndarray], dtypes: dict[str, str],
              order: list[str] | None = None) -> None:
    """A safetensors file with header and data in `order` (default: dict order)."""
    order = order or list(tensors)
    header, blobs, offset = {}, [], 0
    for name in order:
        x, dt = np.asarray(tensors[name], np.float32), dtypes[name]
        if dt == "BF16":
            raw = (round_to(x, "BF16").view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            with np.errstate(over="ignore"):
                raw = np.ascontiguousarray(x.astype(_NP[dt])).astype(
                    np.dtype(_NP[dt]).newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(x.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst / "model.safetensors"


def rewrite(src: Path, dst: Path, edit, order=None) -> Path:
    """Copy, then apply edit(tensors, dtypes) in place and write with write_raw."""
    path = copy(src, dst)
    tensors, dtypes = read(path)
    edit(tensors, dtypes)
    write_raw(path, tensors, dtypes, order(list(tensors)) if order else None)
    return dst


def cast(prefix: str, dtype: str):
    def edit(t, d):
        for k in t:
            if k.startswith(prefix):
                d[k] = dtype
    return edit


# -- re-encodings (must be accepted with --expect same) --------------------------------
def fp16_dit(src, dst):
    return rewrite(src, dst, cast(DIT, "F16"))


def bf16_dit(src, dst):
    return rewrite(src, dst, cast(DIT, "BF16"))


def fp32_vae(src, dst):
    return rewrite(src, dst, cast(VAE, "F32"))


def fp16_conditioning(src, dst, dtype="F16"):
    """The number conditioner and the whole T5 encoder (its own file) in fp16."""
    rewrite(src, dst, cast("conditioner.", dtype))
    t5 = dst / "t5" / "model.safetensors"
    tensors, dtypes = read(t5)
    write_raw(t5, tensors, {k: dtype for k in dtypes})
    return dst


def bf16_conditioning(src, dst):
    return fp16_conditioning(src, dst, "BF16")


def bf16_vae(src, dst):
    return rewrite(src, dst, cast(VAE, "BF16"))


def vae_fp32_original(src, dst, seed=7):
    """An fp32 VAE whose fp16 rounding is the approved fp16 VAE: what the approved file was
    made from (values moved by up to 0.49 fp16 ulp)."""
    rng = np.random.default_rng(seed)

    def edit(t, d):
        for k in t:
            if k.startswith(VAE):
                a = np.abs(t[k]).astype(np.float16)
                # the smaller gap either side (at a power of two the one below is half)
                gap = np.minimum(np.spacing(a), a - np.nextafter(a, np.float16(0)))
                gap = np.where(a == 0, np.spacing(a), gap).astype(np.float32)
                t[k] = t[k] + rng.uniform(-0.49, 0.49, t[k].shape).astype(np.float32) * gap
                d[k] = "F32"
    return rewrite(src, dst, edit)


def reparam_vae(src, dst):
    """Every VAE weight-norm pair stored as g = ||w|| (per dim 0), v = w, in fp32: the same
    convolutions (w = g v / ||v||) written another way."""
    from harness.weights.convert import fuse_pair

    def edit(t, d):
        for k in [k for k in t if k.startswith(VAE) and k.endswith(".weight_g")]:
            m = k[: -len(".weight_g")]
            w = fuse_pair(t[k], t[f"{m}.weight_v"])
            axes = tuple(range(1, w.ndim))
            t[k] = np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=axes, keepdims=True)).astype(
                np.float32)
            t[f"{m}.weight_v"] = w
            d[k] = d[f"{m}.weight_v"] = "F32"
    return rewrite(src, dst, edit)


def reversed_keys(src, dst):
    return rewrite(src, dst, lambda t, d: None, order=lambda keys: keys[::-1])


def header_order(path: Path) -> list[str]:
    return list(read_header(path)[0])


# -- corruptions: structurally valid (same keys, shapes, dtypes) ------------------------
def transposed(src, dst):
    return rewrite(src, dst, lambda t, d: t.__setitem__(SQUARE, t[SQUARE].T.copy()))


def qk_swapped(src, dst):
    def edit(t, d):
        q, k, v = np.split(t[QKV], 3, axis=0)
        t[QKV] = np.concatenate([k, q, v])
    return rewrite(src, dst, edit)


def weight_g_wrong_dim(src, dst):
    """Re-export of the ConvTranspose1d weight norm with g taken per output channel (dim 1)."""
    from harness.weights.convert import fuse_pair

    def edit(t, d):
        w = fuse_pair(t[f"{CONVT}.weight_g"], t[f"{CONVT}.weight_v"])  # the true weight
        g = np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=(0, 2)))    # wrong: per dim 1
        t[f"{CONVT}.weight_g"] = g.reshape(-1, 1, 1).astype(np.float32)
        t[f"{CONVT}.weight_v"] = w
    return rewrite(src, dst, edit)


def scaled(src, dst, factor=1.25):
    return rewrite(src, dst, lambda t, d: t.__setitem__(FF_OUT, t[FF_OUT] * factor))


def foreign_tensor(src, dst, other: Path):
    theirs, _ = read(Path(other) / "model.safetensors")
    return rewrite(src, dst, lambda t, d: t.__setitem__(FOREIGN, theirs[FOREIGN]))


# -- corruptions the structure stage catches -------------------------------------------
def with_nan(src, dst):
    def edit(t, d):
        t[NAN_KEY] = t[NAN_KEY].copy()
        t[NAN_KEY][3, 5] = np.nan
    return rewrite(src, dst, edit)


def fp16_overflow(src, dst):
    """An fp16 re-encode of the DiT where one weight exceeds the fp16 range (65504) -> inf."""
    def edit(t, d):
        cast(DIT, "F16")(t, d)
        t[FF_OUT] = t[FF_OUT].copy()
        t[FF_OUT][0, 0] = 1.0e5
    return rewrite(src, dst, edit)


def missing_key(src, dst, key=FF_OUT):
    def edit(t, d):
        del t[key]
    return rewrite(src, dst, edit)


def extra_key(src, dst, key="model.model.transformer.layers.9.ff.ff.2.weight"):
    def edit(t, d):
        t[key], d[key] = np.ones((4, 4), np.float32), "F32"
    return rewrite(src, dst, edit)


def truncated(src, dst):
    path = copy(src, dst)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return dst


def trailing_bytes(src, dst):
    """Valid header and tensors, then 64 bytes no tensor owns."""
    path = copy(src, dst)
    path.write_bytes(path.read_bytes() + b"\0" * 64)
    return dst


def broken_tokenizer(src, dst):
    copy(src, dst)
    (dst / "t5" / "spiece.model").write_bytes(b"not a sentencepiece model")
    return dst


def t5_missing_tensor(src, dst, key="encoder.final_layer_norm.weight"):
    copy(src, dst)
    t5 = dst / "t5" / "model.safetensors"
    tensors, dtypes = read(t5)
    del tensors[key]
    write_raw(t5, tensors, dtypes)
    return dst


def bare_weight_file(src, dst):
    """Only the weights, under another name, with no model_config.json or t5/ beside them."""
    dst.mkdir(parents=True)
    shutil.copyfile(src / "model.safetensors", dst / "candidate.safetensors")
    return dst / "candidate.safetensors"


def pickle_renamed(src, dst):
    path = copy(src, dst)
    tensors, _ = read(path)
    path.write_bytes(pickle.dumps({k: v for k, v in tensors.items()}, protocol=4))
    return dst
