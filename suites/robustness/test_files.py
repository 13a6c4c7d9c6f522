"""Files that are not files, and files that lie about their size: refused from their stat or
header before any blocking open, hashing or reading of data. Hang-prone cases run in a real
process with a timeout; the peak RSS of each is bounded."""

from __future__ import annotations

import json
import os
import shutil
import struct
import time

import pytest

from suites.robustness.contract import bad_input, cli, rejected, run


# What replaces the file: a FIFO (open() would block forever), a device, a directory.
KINDS = ("fifo", "dev-zero", "dev-null", "directory")


def call(kind, *argv):
    """FIFO cases in a real process with a timeout (a regression would block in open());
    the others in-process."""
    return run(*argv) if kind == "fifo" else cli(*argv)


def replace_with(path, kind):
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        os.symlink(f"/dev/{kind.split('-')[1]}", path)


WHAT = {"fifo": "FIFO", "dev-zero": "character device", "dev-null": "character device",
        "directory": "directory"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rel", ["model.safetensors", "model_config.json", "t5/config.json",
                                 "t5/model.safetensors"])
def test_inspect_refuses_non_regular(rel, kind, tiny_copy):
    ckpt = tiny_copy()
    replace_with(ckpt / rel, kind)
    res = call(kind, "inspect", ckpt)
    line = bad_input(res, rel)
    if not (rel == "model.safetensors" and kind == "directory"):
        assert WHAT[kind] in line, line


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_generate_refuses_non_regular(kind, tiny_copy, tmp_path):
    ckpt = tiny_copy()
    replace_with(ckpt / "model.safetensors", kind)
    bad_input(call(kind, "generate", "--weights", ckpt, "--out", tmp_path / "o.wav"),
              "model.safetensors", WHAT[kind])
    assert not list(tmp_path.iterdir())


def test_generate_refuses_fifo_tokenizer(tiny_copy, tmp_path):
    ckpt = tiny_copy()
    replace_with(ckpt / "t5" / "spiece.model", "fifo")
    bad_input(run("generate", "--weights", ckpt, "--out", tmp_path / "o.wav"),
              "spiece.model", "FIFO")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_gate_never_accepts_non_regular(kind, tiny_copy):
    ckpt = tiny_copy()
    replace_with(ckpt / "model.safetensors", kind)
    rejected(call(kind, "gate", ckpt, "--expect", "update", "--no-parity", "--json"),
             "model.safetensors")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_audio_check_refuses_non_regular(kind, tmp_path):
    path = tmp_path / "clip.wav"
    replace_with(path, kind)
    bad_input(call(kind, "audio", "check", path), path, WHAT[kind])


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_golden_verify_refuses_non_regular_manifest(kind, golden_dir, tmp_path):
    case = tmp_path / "tiny-torch"
    shutil.copytree(golden_dir / "tiny-torch", case)
    replace_with(case / "manifest.json", kind)
    bad_input(call(kind, "golden", "verify", "--golden-dir", tmp_path), "manifest.json", WHAT[kind])


def _sparse_candidate(ckpt, extra_bytes: int):
    """The real tensors plus one U8 tensor of `extra_bytes` at the end, its bytes a hole in a
    sparse file: the header is consistent, the file really is that large."""
    path = ckpt / "model.safetensors"
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    header["extra.junk"] = {"dtype": "U8", "shape": [extra_bytes],
                            "data_offsets": [len(data), len(data) + extra_bytes]}
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
        f.truncate(8 + len(h) + len(data) + extra_bytes)
    return path


TIB = 1 << 40


def test_gate_on_a_sparse_1_tib_file_ends_quickly(tiny_copy):
    """The gate used to hash the whole file before reading the header (hours for 1 TiB)."""
    path = _sparse_candidate(tiny_copy(), TIB)
    t0 = time.monotonic()
    res = run("gate", path.parent, "--expect", "update", "--no-parity", "--json")
    rejected(res, "unexpected tensor extra.junk")
    assert time.monotonic() - t0 < 60
    path.unlink()


@pytest.mark.parametrize("cmd", ["inspect", "generate"])
def test_sparse_1_tib_file_is_refused_from_its_header(cmd, tiny_copy, tmp_path):
    path = _sparse_candidate(tiny_copy(), TIB)
    argv = ["inspect", path.parent] if cmd == "inspect" else [
        "generate", "--weights", path.parent, "--out", tmp_path / "o.wav"]
    bad_input(cli(*argv), "unexpected tensor extra.junk")
    path.unlink()


def _sparse_wav(path, seconds: int, sr: int = 44100, channels: int = 2):
    """A valid 16-bit PCM WAV of `seconds` of silence, written as a hole (no disk used)."""
    data = seconds * sr * channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, sr, sr * channels * 2, channels * 2, 16)
    head = (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", data))
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(len(head) + data)
    return path


def test_audio_check_on_two_hours_is_bounded(tmp_path):
    """It died with a MemoryError after 5.6 GB; now refused from the header, RSS bounded."""
    path = _sparse_wav(tmp_path / "two-hours.wav", 2 * 3600)
    res = run("audio", "check", path)
    bad_input(res, path, "7200.0 s of audio", "at most 180 s")
    assert res.rss_mb < 500, res.rss_mb


def test_audio_check_at_the_limit_runs(tmp_path):
    """Just under the limit the checks run (silence fails them: exit 1) within 2 GB."""
    path = _sparse_wav(tmp_path / "long.wav", 60)
    res = run("audio", "check", path, timeout=120)
    assert res.code == 1, res.err
    assert res.rss_mb < 2048, res.rss_mb


def test_weights_diff_refuses_fifo(tiny_copy, tmp_path):
    ckpt = tiny_copy()
    replace_with(ckpt / "model.safetensors", "fifo")
    res = run("weights", "diff", ckpt, ckpt)
    bad_input(res, "model.safetensors")


def test_missing_files_are_named(tmp_path):
    bad_input(cli("inspect", tmp_path / "nope"), tmp_path / "nope", "no such file")
    bad_input(cli("audio", "check", tmp_path / "nope.wav"), "no such file")


@pytest.mark.parametrize("kind", ["dev-null", "directory"])
def test_audio_check_refuses_non_regular_reference(kind, tmp_path):
    clip = _sparse_wav(tmp_path / "clip.wav", 2)
    ref = tmp_path / "ref.wav"
    replace_with(ref, kind)
    bad_input(cli("audio", "check", clip, "--reference", ref), ref)


@pytest.mark.parametrize("kind", ["fifo", "dev-null"])
def test_gate_refuses_non_regular_thresholds(kind, tiny_checkpoint, tmp_path):
    path = tmp_path / "thresholds.toml"
    replace_with(path, kind)
    bad_input(call(kind, "gate", tiny_checkpoint, "--no-parity", "--audio-thresholds", path),
              path)


@pytest.mark.parametrize("kind", ["fifo", "dev-null"])
def test_gate_refuses_non_directory_report(kind, tiny_checkpoint, tmp_path):
    path = tmp_path / "report"
    replace_with(path, kind)
    bad_input(call(kind, "gate", tiny_checkpoint, "--no-parity", "--report", path),
              "cannot write the report")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_golden_verify_refuses_non_regular_tensors(kind, golden_dir, tmp_path):
    case = tmp_path / "tiny-torch"
    shutil.copytree(golden_dir / "tiny-torch", case)
    replace_with(case / "tensors.safetensors", kind)
    bad_input(call(kind, "golden", "verify", "--golden-dir", tmp_path), "tensors.safetensors", WHAT[kind])


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_weights_diff_refuses_non_regular_tflite(kind, tiny_checkpoint, tmp_path):
    """A non-regular dit_model.tflite is not taken for a TFLite file (never opened)."""
    tfl = tmp_path / "arm"
    tfl.mkdir()
    replace_with(tfl / "dit_model.tflite", kind)
    bad_input(call(kind, "weights", "diff", tfl, tiny_checkpoint), tfl, "no TFLite files")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_weights_extract_refuses_non_regular_tflite_file(kind, tmp_path):
    path = tmp_path / "dit_model.tflite"
    replace_with(path, kind)
    bad_input(call(kind, "weights", "extract", path, "--out", tmp_path / "o.safetensors"), path)
    assert not (tmp_path / "o.safetensors").exists()
