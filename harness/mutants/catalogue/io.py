"""I/O mutants: the audio after the decoder reaches the caller or the WAV file in the wrong
layout.

`run-returns-channels-swapped` breaks what the pipeline returns (`pipeline.OUTPUT_AUDIO`).
The writer mutants patch `harness.audio.io.write_wav` (what `sao-harness generate` writes
with), so their module is the pseudo-path `output.wav` (`OUTPUT`): no golden tensor
sees them; the WAV round trip and the audio checks on the file as written localize them.
"""

from __future__ import annotations

from contextlib import contextmanager

import mlx.core as mx
import numpy as np

from harness.audio import io as audio_io
from harness.model import pipeline
from harness.model.capture import tap
from harness.mutants.core import Mutant, patched, swap

OUTPUT = "output.wav"
_WRITE_WAV = audio_io.write_wav  # the real writer, kept before any patch
_RUN = pipeline.StableAudio.run  # the real run (conditioning, sampling), kept before any patch


def _run_returns_channels_swapped(self, *args, decode=True, **kwargs):
    latents, _ = _RUN(self, *args, decode=False, **kwargs)
    if not decode:
        return latents, None
    audio = self.vae.decode(latents)[:, ::-1]  # BUG: (B, N, C) -> planar with C reversed
    return latents, tap(pipeline.OUTPUT_AUDIO, audio.astype(mx.float32))


def _writer(transform):
    """write_wav that hands transform(trimmed planar audio) to the real writer."""
    def write_wav(path, audio, sample_rate, seconds):
        n = int(round(seconds * sample_rate))
        return _WRITE_WAV(path, transform(np.asarray(audio)[:, :n]), sample_rate, seconds)

    @contextmanager
    def apply(model, checkpoint):
        with patched(audio_io, "write_wav", write_wav):
            yield
    return apply


def planar_as_interleaved(x):
    """(C, N) planar audio handed on as if it were interleaved frames."""
    # BUG: L plays on both channels in the first half at double speed, R in the second
    c, n = x.shape
    return np.ascontiguousarray(x).reshape(n, c).T


def _interleaved_as_planar(x):
    # BUG: interleaved L R L R samples read back row-major as planar: each channel holds
    # alternating L/R samples of the first half, stretched over the whole clip
    c, n = x.shape
    return np.ascontiguousarray(x.T).reshape(c, n)


def channels_swapped(x):
    """(C, N) planar audio with channel 0 written as right."""
    return x[::-1]  # BUG


MUTANTS = [
    Mutant("run-returns-channels-swapped", pipeline.OUTPUT_AUDIO,
           "the pipeline hands back left and right exchanged after the decode: the stereo "
           "image mirrored", swap(pipeline.StableAudio, "run", _run_returns_channels_swapped)),
    Mutant("planar-written-as-interleaved", OUTPUT,
           "double speed, an octave up ('chipmunk'): the left channel's whole clip squeezed "
           "into the first half on both channels, then the right's", _writer(planar_as_interleaved)),
    Mutant("interleaved-read-as-planar", OUTPUT,
           "'slow motion': half speed, an octave down, with L/R samples alternating in each "
           "channel (a buzz at Nyquist); the second half of the clip is lost",
           _writer(_interleaved_as_planar)),
    Mutant("lr-swapped", OUTPUT,
           "left and right exchanged: the stereo image mirrored (inaudible on mono content)",
           _writer(channels_swapped)),
]
