"""The committed real-music corpus (suites/audio/corpus): what the audio suites read by default,
on every OS; the same samples as the Debian packages; a modified clip refused by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from harness.audio import corpus
from harness.errors import BadInput


def test_every_test_clip_is_committed_with_its_licence():
    d = corpus.COMMITTED_DIR
    files = json.loads((d / corpus.MANIFEST).read_text())["files"]
    assert corpus.needs_packages(corpus.TEST) == ()
    for src, stems in corpus.TEST.items():
        for stem in stems:
            assert corpus.committed_file(src, stem) is not None, f"{src}/{stem}"
    assert len(files) == sum(map(len, corpus.TEST.values()))
    for lic in ("noiz2sa-data.copyright", "openttd-openmsx.copyright",
                "timgm6mb-soundfont.copyright", "GPL-2"):
        assert (d / "licenses" / lic).stat().st_size > 500
    for stem in corpus.TEST["openmsx"]:  # the MIDI source beside each render
        assert (d / "openmsx" / f"{stem}.mid").read_bytes()[:4] == b"MThd"


def test_committed_clips_are_the_debian_packages_samples(monkeypatch, require_packages):
    """One clip of each source: bit-identical samples either way (the Debian render of the
    MIDI is cached after its first run)."""
    require_packages(("noiz2sa", "openmsx"))
    pairs = [("noiz2sa", "stg1"), ("openmsx", "coconut_run2")]
    committed = [corpus.load_clip(*p) for p in pairs]
    monkeypatch.setenv(corpus.CORPUS_ENV, "debian")
    debian = [corpus.load_clip(*p) for p in pairs]
    for a, b in zip(committed, debian):
        assert a.sr == b.sr and np.array_equal(a.audio, b.audio), a.name


def test_a_modified_clip_is_refused_by_name(tmp_path, monkeypatch):
    d = tmp_path / "corpus"
    shutil.copytree(corpus.COMMITTED_DIR, d)
    clip = d / "openmsx" / "wood_whistles.flac"
    clip.write_bytes(b"version https://git-lfs.github.com/spec/v1\n")  # an LFS pointer
    monkeypatch.setenv(corpus.CORPUS_ENV, str(d))
    with pytest.raises(BadInput, match=r"wood_whistles\.flac.*sha256"):
        corpus.load_clip("openmsx", "wood_whistles")
    assert corpus.load_clip("noiz2sa", "stg0").audio.shape[0] == 2  # the others still load
