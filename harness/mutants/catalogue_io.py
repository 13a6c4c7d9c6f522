"""Output-layout mutants: the planar (C, N) audio reaches the WAV file in the wrong layout.

They patch `harness.audio.io.write_wav` (what `sao-harness generate` writes with), so
their module is the pseudo-path `output.wav`: no golden tensor sees them; the WAV round trip
and the audio checks on the file as written localize them.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from harness.audio import io
from harness.mutants.core import Mutant, patched, register

OUTPUT = "output.wav"
_WRITE_WAV = io.write_wav  # the real writer, kept before any patch


def _writer(transform):
    """write_wav that hands transform(trimmed planar audio) to the real writer."""
    def write_wav(path, audio, sample_rate, seconds):
        n = int(round(seconds * sample_rate))
        return _WRITE_WAV(path, transform(np.asarray(audio)[:, :n]), sample_rate, seconds)

    @contextmanager
    def apply(model, checkpoint):
        with patched(io, "write_wav", write_wav):
            yield
    return apply


def _planar_as_interleaved(x):
    # BUG: the planar buffer handed on as if it were interleaved frames: L plays on both
    # channels in the first half at double speed, R in the second
    c, n = x.shape
    return np.ascontiguousarray(x).reshape(n, c).T


def _interleaved_as_planar(x):
    # BUG: interleaved L R L R samples read back row-major as planar: each channel holds
    # alternating L/R samples of the first half, stretched over the whole clip
    c, n = x.shape
    return np.ascontiguousarray(x.T).reshape(c, n)


def _swap(x):
    return x[::-1]  # BUG: channel 0 written as right


MUTANTS = [
    Mutant("planar-written-as-interleaved", OUTPUT,
           "double speed, an octave up ('chipmunk'): the left channel's whole clip squeezed "
           "into the first half on both channels, then the right's", _writer(_planar_as_interleaved)),
    Mutant("interleaved-read-as-planar", OUTPUT,
           "'slow motion': half speed, an octave down, with L/R samples alternating in each "
           "channel (a buzz at Nyquist); the second half of the clip is lost",
           _writer(_interleaved_as_planar)),
    Mutant("lr-swapped", OUTPUT,
           "left and right exchanged: the stereo image mirrored (inaudible on mono content)",
           _writer(_swap)),
]

for _m in MUTANTS:
    register(_m)
