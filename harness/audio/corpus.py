"""Real music clips for proving the audio checks: noiz2sa's Vorbis tracks and openMSX MIDI
rendered by fluidsynth with an explicit sound font (bit-identical on every run).

Clips are split once, by name, into a calibration set (the only clips thresholds were tuned
on) and a test set (never used for tuning), so the suite measures how thresholds hold on
music they have not seen.

The test set is committed (suites/audio/corpus/: the noiz2sa .ogg files as released, the
MIDI renders as lossless FLAC excerpts, licences and sha256 manifest beside them), so the
audio suites run the same on macOS and on Linux without the Debian packages. Lookup:
$SAO_AUDIO_CORPUS names a committed-layout directory, or "debian" for the packages; unset,
a clip comes from the committed directory when it holds it, else from the packages (the
calibration set). `python -m harness.audio.corpus export DIR` rebuilds the committed files
from the packages.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from harness.errors import BadInput
from harness import settings
from harness.settings import cache_root

# Where the Debian packages put their files; SAO_AUDIO_SYSTEM_SHARE moves it (a test proves
# the suites run without the packages by pointing it at an empty directory).
SHARE = settings.audio_system_share()
NOIZ2SA_DIR = SHARE / "games/noiz2sa/sounds"
OPENMSX_DIR = SHARE / "games/openttd/baseset/openmsx"
SOUNDFONT = SHARE / "sounds/sf2/TimGM6mb.sf2"

# Debian package providing each input (a file, or a command on PATH); named in skip/fail
# messages when one is missing.
PACKAGES = {
    "noiz2sa": ("noiz2sa-data", NOIZ2SA_DIR / "stg0.ogg"),
    "openmsx": ("openttd-openmsx", OPENMSX_DIR / "tttheme2.mid"),
    "soundfont": ("timgm6mb-soundfont", SOUNDFONT),
    "fluidsynth": ("fluidsynth", "fluidsynth"),
    "sox": ("sox", "sox"),
}
APT_LINE = ("apt-get install -y --no-install-recommends "
            "noiz2sa-data openttd-openmsx fluidsynth timgm6mb-soundfont sox")

COMMITTED_DIR = Path(__file__).resolve().parents[2] / "suites" / "audio" / "corpus"
CORPUS_ENV = settings.AUDIO_CORPUS
MANIFEST = "manifest.json"

CLIP_SECONDS = 12.0
CLIP_START_FRACTION = 0.25  # skip intros: a quarter of the way in is well inside the music

CALIBRATION = {
    "noiz2sa": ["stg00", "stg2", "stg4"],
    "openmsx": ["5432gone_redfarn", "boogi_marabi_redfarn", "chemistry_lab", "flying_scotsman",
                "keep_on_rolling", "midnight_snow_run", "relax_song", "the_hobo_redfarn"],
}
TEST = {
    "noiz2sa": ["stg0", "stg1", "stg3", "stg5"],  # stg0 has a natural ~21.5 Hz pulse
    "openmsx": ["be_sharp_bw_redfarn", "busy_schedule", "city_blues_redfarn", "coconut_run2",
                "harp_harmony", "linns_basket", "modern_motion", "wood_whistles"],
}


@dataclass(frozen=True)
class Clip:
    name: str       # "source/stem"
    audio: np.ndarray  # planar (2, N) float32 at 44100 Hz
    sr: int


def committed_dir() -> Path | None:
    """The committed corpus in use, or None when clips come from the Debian packages."""
    env = settings.audio_corpus()
    if env == "debian":
        return None
    d = Path(env) if env else COMMITTED_DIR
    if env and not (d / MANIFEST).is_file():
        raise BadInput(d, f"no {MANIFEST}: not a committed audio corpus (${CORPUS_ENV})")
    return d if (d / MANIFEST).is_file() else None


def _manifest(d: Path) -> dict:
    import json

    try:
        return json.loads((d / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BadInput(d / MANIFEST, f"unreadable corpus manifest ({e})") from None


def committed_file(source: str, stem: str) -> Path | None:
    """The committed file of a clip (sha256 checked against the manifest), None if absent."""
    d = committed_dir()
    if d is None:
        return None
    files = _manifest(d)
    rel = next((f for f in (f"{source}/{stem}.ogg", f"{source}/{stem}.flac") if f in files), None)
    if rel is None:
        return None
    path = d / rel
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise BadInput(path, f"committed corpus file unreadable: {e.strerror or e}") from None
    if digest != files[rel]:
        raise BadInput(path, f"sha256 {digest[:16]}... differs from the corpus manifest's "
                             f"{files[rel][:16]}... (a Git LFS pointer, or a modified clip)")
    return path


def needs_packages(split: dict[str, list[str]]) -> tuple[str, ...]:
    """Corpus sources of `split` that must come from the Debian packages here."""
    return tuple(src for src, stems in split.items()
                 if any(committed_file(src, s) is None for s in stems))


def missing_packages(needs=("noiz2sa", "openmsx")) -> list[str]:
    """Debian packages that the given sources/tools need and that are not installed."""
    keys = list(needs) + (["soundfont", "fluidsynth"] if "openmsx" in needs else [])
    missing = []
    for key in dict.fromkeys(keys):
        package, what = PACKAGES[key]
        present = shutil.which(what) if isinstance(what, str) else what.is_file()
        if not present:
            missing.append(package)
    return missing


def cache_dir() -> Path:
    """Rendered clips live under $SAO_HARNESS_CACHE/audio (default the user cache)."""
    root = cache_root()
    d = root / "audio"
    d.mkdir(parents=True, exist_ok=True)
    return d


def render_midi(mid: Path, out: Path, soundfont: Path = SOUNDFONT):
    """Render a MIDI file to 44.1 kHz stereo 16-bit WAV with fluidsynth (deterministic)."""
    cmd = ["fluidsynth", "-ni", "-q", "-F", str(out), "-r", "44100", "-O", "s16",
           str(soundfont), str(mid)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not out.is_file():
        raise BadInput(mid, f"fluidsynth failed: {(r.stderr or r.stdout).strip()[:200]}")


def _excerpt(path: Path, seconds: float) -> tuple[np.ndarray, int]:
    info = sf.info(path)
    n = int(round(seconds * info.samplerate))
    start = min(int(info.frames * CLIP_START_FRACTION), max(info.frames - n, 0))
    data, sr = sf.read(path, start=start, frames=n, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), sr


def load_clip(source: str, stem: str, seconds: float = CLIP_SECONDS) -> Clip:
    """One excerpt; MIDI renders are cached as FLAC keyed by file, sound font and length."""
    committed = committed_file(source, stem)
    if committed is not None and committed.suffix == ".ogg":
        audio, sr = _excerpt(committed, seconds)
    elif committed is not None:
        data, sr = sf.read(committed, dtype="float32", always_2d=True)
        if data.shape[0] < int(round(seconds * sr)):
            raise BadInput(committed, f"holds {data.shape[0] / sr:.2f} s, {seconds} s asked")
        audio = np.ascontiguousarray(data[: int(round(seconds * sr))].T)
    elif source == "noiz2sa":
        audio, sr = _excerpt(NOIZ2SA_DIR / f"{stem}.ogg", seconds)
    elif source == "openmsx":
        mid = OPENMSX_DIR / f"{stem}.mid"
        key = hashlib.sha256(mid.read_bytes() + SOUNDFONT.read_bytes()[:1 << 16]
                             + f"{seconds}/{CLIP_START_FRACTION}".encode()).hexdigest()[:12]
        cached = cache_dir() / f"{stem}-{key}.flac"
        if not cached.is_file():
            with tempfile.TemporaryDirectory() as tmp:
                full = Path(tmp) / "full.wav"
                render_midi(mid, full)
                audio, sr = _excerpt(full, seconds)
                part = cached.with_suffix(".part.flac")
                sf.write(part, audio.T, sr, subtype="PCM_16")  # the render is 16-bit: lossless
                part.replace(cached)
        data, sr = sf.read(cached, dtype="float32", always_2d=True)
        audio = np.ascontiguousarray(data.T)
    else:
        raise ValueError(f"unknown source {source!r}")
    return Clip(f"{source}/{stem}", audio, sr)


def clips(split: dict[str, list[str]], seconds: float = CLIP_SECONDS) -> list[Clip]:
    return [load_clip(src, stem, seconds) for src, stems in split.items() for stem in stems]


def export(out: Path, split: dict[str, list[str]] = TEST) -> dict[str, str]:
    """Write the committed corpus of `split` into `out` from the Debian packages: noiz2sa's
    .ogg files as released, each MIDI's rendered excerpt as FLAC (16-bit, lossless) beside its
    .mid; -> the manifest's {relative path: sha256}."""
    import json

    files = {}
    for src, stems in split.items():
        (out / src).mkdir(parents=True, exist_ok=True)
        for stem in stems:
            if src == "noiz2sa":
                shutil.copyfile(NOIZ2SA_DIR / f"{stem}.ogg", out / src / f"{stem}.ogg")
                rel = f"{src}/{stem}.ogg"
            else:
                shutil.copyfile(OPENMSX_DIR / f"{stem}.mid", out / src / f"{stem}.mid")
                clip = load_clip(src, stem)  # the cached render (Debian path)
                sf.write(out / src / f"{stem}.flac", clip.audio.T, clip.sr, subtype="PCM_16")
                rel = f"{src}/{stem}.flac"
            files[rel] = hashlib.sha256((out / rel).read_bytes()).hexdigest()
    (out / MANIFEST).write_text(json.dumps({"seconds": CLIP_SECONDS,
                                            "start_fraction": CLIP_START_FRACTION,
                                            "files": files}, indent=1) + "\n")
    return files


if __name__ == "__main__":
    import os
    import sys

    if sys.argv[1:2] != ["export"] or len(sys.argv) != 3:
        sys.exit("usage: python -m harness.audio.corpus export DIR  (needs the Debian packages)")
    os.environ[CORPUS_ENV] = "debian"
    for rel, digest in export(Path(sys.argv[2])).items():
        print(digest, rel)
