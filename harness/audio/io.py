"""Audio files in and out through soundfile; every unusable input becomes one BadInput line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from harness.errors import BadInput
from harness.files import atomic_file, check_output_target, regular_file

SAMPLE_RATE = 44100  # the model's only rate; every threshold assumes it
FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
# Longest file `load` reads: the model makes at most ~12 s; the checks hold ~0.2 GB per minute
# of stereo audio, so this keeps `audio check` with a reference under ~1.5 GB.
MAX_SECONDS = 180


def validate(audio, sr: int, path: str | Path | None = None) -> np.ndarray:
    """Return `audio` as planar (C, N) float32 after checking rate, shape and finiteness."""
    if sr != SAMPLE_RATE:
        raise BadInput(path, f"sample rate {sr} Hz, expected {SAMPLE_RATE} Hz")
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise BadInput(path, f"audio has shape {a.shape}, expected planar (channels, samples)")
    if a.shape[0] > 2 and a.shape[1] <= 2:
        raise BadInput(path, f"audio has shape {a.shape}, looks like (samples, channels); "
                             "expected planar (channels, samples)")
    if a.shape[0] not in (1, 2):
        raise BadInput(path, f"audio has {a.shape[0]} channels, expected 1 or 2")
    if a.shape[1] == 0:
        raise BadInput(path, "audio has no samples")
    if not np.issubdtype(a.dtype, np.floating):
        raise BadInput(path, f"audio dtype {a.dtype}, expected floating point")
    return a.astype(np.float32, copy=False)


def load(path: str | Path, allow_nonfinite: bool = False) -> tuple[np.ndarray, int]:
    """Read WAV/FLAC/OGG as planar (C, N) float32. NaN/Inf samples are bad input."""
    p = Path(path)
    if regular_file(p, "audio file").st_size == 0:
        raise BadInput(p, "empty file")
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadInput(p, f"not a readable WAV/FLAC/OGG file ({reason})") from None
    if info.samplerate > 0 and info.frames > MAX_SECONDS * info.samplerate:
        raise BadInput(p, f"{info.frames / info.samplerate:.1f} s of audio; the checks take at "
                          f"most {MAX_SECONDS} s (their memory grows with the length: ~0.2 GB "
                          "per minute)")
    if info.channels > 2:
        raise BadInput(p, f"audio has {info.channels} channels, expected 1 or 2")
    try:
        data, sr = sf.read(p, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadInput(p, f"not a readable WAV/FLAC/OGG file ({reason})") from None
    audio = validate(data.T, sr, p)
    if not allow_nonfinite:
        bad = int(np.size(audio) - np.count_nonzero(np.isfinite(audio)))
        if bad:
            raise BadInput(p, f"{bad} NaN/Inf samples")
    return np.ascontiguousarray(audio), sr


def save(path: str | Path, audio: np.ndarray, sr: int = SAMPLE_RATE, subtype: str | None = None):
    """Write planar (C, N) audio; the container follows the suffix (.wav, .flac, .ogg)."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise BadInput(p, f"unknown audio suffix {p.suffix!r}, expected one of {sorted(FORMATS)}")
    sf.write(p, np.asarray(audio).T, sr, format=fmt, subtype=subtype)
    if fmt == "WAV":
        _zero_peak_timestamp(p)


def _zero_peak_timestamp(path: Path) -> None:
    """libsndfile adds a PEAK chunk to float WAVs whose second field is the wall-clock time of
    writing: zero it, so identical audio gives byte-identical files."""
    with open(path, "r+b") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while True:
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"PEAK" and size >= 8:
                f.seek(pos + 8 + 4)  # after the version field
                f.write(b"\0\0\0\0")
                return
            if chunk[:4] == b"data":
                return  # libsndfile writes PEAK before the data
            pos += 8 + size + (size & 1)


def check_writable(path: Path) -> None:
    """Fail before any model work when the output WAV cannot be written."""
    check_output_target(path)  # never replace a directory, device node or FIFO
    if not os.access(path.parent, os.W_OK) or not path.parent.is_dir():
        raise BadInput(path, "cannot write: directory missing or not writable")
    if path.suffix.lower() != ".wav":
        raise BadInput(path, "output must be a .wav file")


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, seconds: float) -> int:
    """Planar (C, N) -> interleaved float WAV trimmed to seconds·rate; atomic. -> samples written.
    What `sao-harness generate` writes with (the I/O mutants patch this function)."""
    n = int(round(seconds * sample_rate))
    if n > audio.shape[1]:
        raise BadInput(path, f"{seconds} s needs {n} samples, the model made {audio.shape[1]}")
    check_writable(path)
    with atomic_file(path, suffix=".wav") as tmp:
        save(tmp, audio[:, :n], sample_rate, subtype="FLOAT")
    return n
