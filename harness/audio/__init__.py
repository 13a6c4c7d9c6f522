"""Audio I/O, quality metrics and threshold checks for generated (2, N) float32 audio."""

from harness.audio.check import Check, Report, check_audio, reference_signal, thresholds
from harness.audio.io import SAMPLE_RATE, load, save

__all__ = ["Check", "Report", "check_audio", "reference_signal", "thresholds", "load", "save",
           "SAMPLE_RATE"]
