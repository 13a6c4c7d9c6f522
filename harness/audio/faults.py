"""Faults a port produces, applied to a clean planar (C, N) clip; each returns a new (C, N) array.

Each fault takes a `depth` (its strength, in the units named in FAULTS) so the suites can
sweep for the weakest depth a check still catches.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

LATENT_RATE = 44100 / 2048  # one latent frame per 2048 output samples


def lowpass(x, sr, cutoff_hz):
    """'Bad phone line': everything above `cutoff_hz` removed (zero-phase 8th-order Butterworth)."""
    sos = signal.butter(8, cutoff_hz, btype="low", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)


def amplitude_modulation(x, sr, depth, rate_hz=LATENT_RATE):
    """'Flickery': gain swings between 1 and 1 - depth at `rate_hz`, locked to sample 0."""
    t = np.arange(x.shape[-1]) / sr
    gain = 1.0 - depth * 0.5 * (1.0 - np.cos(2 * np.pi * rate_hz * t))
    return (x * gain).astype(np.float32)


def stride_comb(x, sr, level_db, period=2048, seed=0):
    """A fixed pattern repeating every `period` samples (a stride artifact), added `level_db`
    relative to the clip's RMS; its spectrum is a comb at multiples of sr / period."""
    rng = np.random.default_rng(seed)
    pattern = rng.standard_normal(period)
    pattern -= pattern.mean()
    pattern /= np.sqrt(np.mean(pattern**2))
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    tiled = np.resize(pattern, x.shape[-1]) * rms * 10 ** (level_db / 20)
    return (x + tiled).astype(np.float32)


def seams(x, sr, period=None, jump_db=0.0, hop=1021, at=None):
    """'Stitched without overlap': the clip cut every `period` samples (or at the sample
    positions `at`) and piece k played from (k + 1) * hop samples earlier in the music, as
    independently decoded chunks whose waveforms do not continue each other. Each cut's
    source moves up to 63 samples further until the waveform jumps by at least `jump_db` re
    the RMS around it (a splice that lands on an equal value by chance is no seam). Taken from
    before the cut, a piece wraps past the clip's start only when cuts are closer than `hop`:
    a piece taken from after it would wrap past the end, a second seam nobody asked for."""
    n = x.shape[-1]
    cuts = list(range(period, n, period) if at is None else at)
    y = x.copy()
    for k, (s, end) in enumerate(zip(cuts, cuts[1:] + [n])):
        rms = np.sqrt(np.mean(x[:, max(s - 1024, 0): s + 1024].astype(np.float64) ** 2))
        want = rms * 10 ** (jump_db / 20)
        jumps = [np.abs(y[:, s - 1] - x[:, (s - (k + 1) * hop - j) % n]).max() for j in range(64)]
        j = next((j for j, d in enumerate(jumps) if d >= want), int(np.argmax(jumps)))
        src = (np.arange(s, end) - (k + 1) * hop - j) % n
        y[:, s:end] = x[:, src]
    return y


def speed(x, sr, factor):
    """Playback at `factor` times the speed (0.5 = slow motion an octave down), same length."""
    n = x.shape[-1]
    up, down = (2, 1) if factor == 0.5 else (1, 2) if factor == 2.0 else (None, None)
    if up is None:
        raise ValueError("speed fault supports factor 0.5 or 2.0")
    y = signal.resample_poly(x, up, down, axis=-1)
    reps = int(np.ceil(n / y.shape[-1]))  # faster playback runs out of clip: loop it
    return np.tile(y, (1, reps))[:, :n].astype(np.float32)


def interleaved_as_planar(x, sr=None, depth=None):
    """An interleaved L R L R buffer reshaped row-major to (2, N): half speed, L/R alternating."""
    c, n = x.shape
    return np.ascontiguousarray(x.T).reshape(c, n)


def planar_as_interleaved(x, sr=None, depth=None):
    """A planar buffer read as interleaved frames: double speed, every other sample dropped."""
    c, n = x.shape
    return np.ascontiguousarray(x).reshape(n, c).T.copy()


def swap_channels(x, sr=None, depth=None):
    return x[::-1].copy()


def duplicate_channel(x, sr=None, depth=None):
    """Mono duplication: the left channel written to both outputs."""
    return np.repeat(x[:1], x.shape[0], axis=0)


def invert_channel(x, sr=None, depth=None):
    """One channel's polarity flipped (a sign error in one output row)."""
    y = x.copy()
    y[-1] *= -1
    return y


def clipping(x, sr, fraction):
    """Hard clipping of the loudest `fraction` of samples (as a too-hot gain into int16 would)."""
    level = np.quantile(np.abs(x), 1.0 - fraction)
    return np.clip(x, -level, level).astype(np.float32)


def dc_offset(x, sr, offset):
    return (x + np.float32(offset)).astype(np.float32)


def silence(x, sr=None, depth=None):
    return np.zeros_like(x)


def nan_samples(x, sr, count):
    """`count` consecutive NaN samples in the first channel, mid-clip."""
    y = x.copy()
    start = x.shape[-1] // 2
    y[0, start:start + int(count)] = np.nan
    return y


def level(x, sr, gain_db):
    return (x * np.float32(10 ** (gain_db / 20))).astype(np.float32)


# name: (function, nominal depth used by the suites, depth unit, direction toward "weaker")
FAULTS = {
    "lowpass_4k": (lowpass, 4000.0, "cutoff Hz", "up"),
    "lowpass_8k": (lowpass, 8000.0, "cutoff Hz", "up"),
    "am_21hz": (amplitude_modulation, 0.3, "modulation depth", "down"),
    "comb_21hz": (lambda x, sr, d: stride_comb(x, sr, d, 2048), -30.0, "dB re RMS", "down"),
    "comb_172hz": (lambda x, sr, d: stride_comb(x, sr, d, 256), -30.0, "dB re RMS", "down"),
    "comb_1378hz": (lambda x, sr, d: stride_comb(x, sr, d, 32), -30.0, "dB re RMS", "down"),
    "comb_5512hz": (lambda x, sr, d: stride_comb(x, sr, d, 8), -30.0, "dB re RMS", "down"),
    # chunks of 128 latent frames (the official decode_audio chunk size) at the tiny preset's
    # 64-sample hop, of 32 frames at the real 2048-sample hop, and a period no frame multiple
    "seams_8192": (lambda x, sr, d: seams(x, sr, 8192, d), 0.0, "jump dB re local RMS", "down"),
    "seams_65536": (lambda x, sr, d: seams(x, sr, 65536, d), 0.0, "jump dB re local RMS", "down"),
    "seams_30011": (lambda x, sr, d: seams(x, sr, 30011, d), 0.0, "jump dB re local RMS", "down"),
    "half_speed": (lambda x, sr, d: speed(x, sr, 0.5), None, "", None),
    "double_speed": (lambda x, sr, d: speed(x, sr, 2.0), None, "", None),
    "interleaved_as_planar": (interleaved_as_planar, None, "", None),
    "planar_as_interleaved": (planar_as_interleaved, None, "", None),
    "lr_swap": (swap_channels, None, "", None),
    "mono_duplication": (duplicate_channel, None, "", None),
    "polarity_flip": (invert_channel, None, "", None),
    "clipping": (clipping, 0.01, "fraction of samples clipped", "down"),
    "dc_offset": (dc_offset, 0.05, "offset (full scale)", "down"),
    "silence": (silence, None, "", None),
    "nan": (nan_samples, 1, "NaN samples", "down"),
    "level_minus_6db": (level, -6.0, "gain dB", "up"),
}


# fault: the checks (harness/audio/check.py names) meant to flag it
INTENDED = {
    "lowpass_4k": ["band_limit_db"],
    "lowpass_8k": ["band_limit_db"],
    "am_21hz": ["flicker_db"],
    "comb_21hz": ["comb_21hz_db"],
    "comb_172hz": ["comb_172hz_db"],
    "comb_1378hz": ["comb_1378hz_db"],
    "comb_5512hz": ["comb_5512hz_db"],
    "seams_8192": ["seam_db", "frame_seam_db"],
    "seams_65536": ["seam_db", "frame_seam_db"],
    "seams_30011": ["seam_db"],
    "half_speed": ["speed_ratio"],
    "double_speed": ["speed_ratio"],
    "interleaved_as_planar": ["speed_ratio"],
    "planar_as_interleaved": ["speed_ratio"],
    "lr_swap": ["side_correlation"],
    "mono_duplication": ["side_level_db", "side_level_ratio_db"],
    "polarity_flip": ["channel_correlation"],
    "clipping": ["clipping_ratio"],
    "dc_offset": ["dc_offset"],
    "silence": ["rms_dbfs"],
    "nan": ["nonfinite_samples"],
    "level_minus_6db": ["level_difference_db"],
}


def apply(name: str, x: np.ndarray, sr: int, depth=None) -> np.ndarray:
    fn, nominal, _, _ = FAULTS[name]
    return fn(x, sr, nominal if depth is None else depth)


# Differences a correct port may legitimately show against the reference (fp16 decoder
# weights, accumulated rounding): reference-relative checks must pass these.
def fp16_roundtrip(x, sr=None):
    return x.astype(np.float16).astype(np.float32)


def numeric_drift(x, sr=None, level_db=-40.0, seed=0):
    """A signal-shaped error `level_db` under the clip: x plus a random short FIR of x, the way
    slightly different weights or rounding perturb a decoder's output."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(16)
    h /= np.sqrt(np.sum(h**2))
    err = signal.lfilter(h, [1.0], x, axis=-1)
    return (x + err * 10 ** (level_db / 20)).astype(np.float32)


def gain_drift(x, sr=None, gain_db=0.25):
    return level(x, sr, gain_db)


BENIGN = {"fp16_roundtrip": fp16_roundtrip, "numeric_drift": numeric_drift,
          "gain_drift": gain_drift}
