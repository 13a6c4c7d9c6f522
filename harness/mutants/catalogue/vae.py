"""VAE mutants: the Oobleck decoder's weights (conv-transpose layout, weight norm), its
layers (padding, Snake, precision), the latent layout going in and the audio layout and
chunking coming out. Each swaps one method or set of weights (see `core`); a restated method
differs from the model's in the line marked BUG.
"""

from __future__ import annotations

from contextlib import contextmanager

import mlx.core as mx
import numpy as np

from harness.model import fastmath
from harness.model.capture import tap
from harness.model.conv import conv1d, conv_transpose1d
from harness.model.layers import Conv1d, ConvTranspose1d, SnakeBeta
from harness.model.prefixes import DECODER, VAE
from harness.model.vae import AudioAutoencoder
from harness.mutants.core import Mutant, patched, replaced_parameters, swap
from harness.weights.convert import TO_MLX

# Latent frames past which the chunked-decode mutant cuts (the official `decode_audio`
# default chunk_size); only the long golden crosses it.
CHUNK_FRAMES = 128


def _decoder_modules(model, cls):
    return [m for _, m in model.pretransform.model.decoder.named_modules() if isinstance(m, cls)]


# -- weights ------------------------------------------------------------------------------------


def fuse_weight_norm_per_output(g_official: np.ndarray, v_official: np.ndarray) -> np.ndarray:
    """The bug: ‖v‖ per MLX axis 0 (output channel), as for a plain conv. A ConvTranspose1d
    stores (in, out, k) in torch, so weight_norm(dim=0) normalises per INPUT channel."""
    perm = TO_MLX["convT"]
    v = v_official.astype(np.float32).transpose(perm)   # (out, k, in)
    g = g_official.astype(np.float32).transpose(perm)   # (1, 1, in)
    norm = np.sqrt((v * v).sum(axis=(1, 2), keepdims=True))  # (out, 1, 1)
    return v * g / norm


@contextmanager
def _convt_weight_norm_wrong_dim(model, checkpoint):
    from harness.weights.safetensors_io import LazyTensors

    changes = []
    f = LazyTensors([(checkpoint.model_file, "")])  # the one strict reader, a tensor at a time
    for m in _decoder_modules(model, ConvTranspose1d):
        w = fuse_weight_norm_per_output(f[f"{m._path}.weight_g"], f[f"{m._path}.weight_v"])
        changes.append((m, "weight", mx.array(w).astype(m.weight.dtype)))
    with replaced_parameters(changes):
        yield


@contextmanager
def _convt_layout(model, checkpoint):
    """The torch (in, out, k) buffer reinterpreted as a conv's (out, in, k), then given the
    conv permutation: the shapes fit, the taps and channels are scrambled."""
    changes = []
    for m in _decoder_modules(model, ConvTranspose1d):
        w = np.array(m.weight)                         # MLX (out, k, in)
        torch_w = w.transpose(2, 0, 1)                 # official (in, out, k)
        out, k, cin = w.shape
        wrong = torch_w.reshape(out, cin, k).transpose(0, 2, 1)
        changes.append((m, "weight", mx.array(np.ascontiguousarray(wrong)).astype(m.weight.dtype)))
    with replaced_parameters(changes):
        yield


# -- layers -------------------------------------------------------------------------------------


def _convt_crop_off_by_one(self, x):
    p = self.padding + 1  # BUG: cropped one sample late (same length, shifted by one)
    co, k, _ = self.weight.shape
    t = x.shape[1]
    length = (t - 1) * self.stride - 2 * self.padding + k
    full = conv_transpose1d(x, self.weight, self.stride, 0)
    full = mx.pad(full, [(0, 0), (0, 1), (0, 0)])
    y = full[:, p: p + length, :]
    if "bias" in self:
        y = y + self.bias
    return tap(self, y, channels_last=True)


_CONV_CALL = Conv1d.__call__  # the model's own, kept before any patch


def _conv_pad_off_by_one(self, x):
    if self.padding == 0 or self.stride != 1 or self.groups != 1:
        return _CONV_CALL(self, x)
    p = self.padding
    x = mx.pad(x, [(0, 0), (p + 1, p - 1), (0, 0)])  # BUG: one extra on the left, one short right
    y = conv1d(x, self.weight, 0, self.dilation, self.get("bias"))
    return tap(self, y, channels_last=True)


def snake_no_exp(self, x):
    """SnakeBeta.__call__ with the log-scale alpha and beta used as they are stored."""
    alpha = self.alpha                      # BUG: log-scale parameters used as they are
    inv_beta = 1.0 / (self.beta + 1e-9)
    return tap(self, fastmath.snake(x, alpha, inv_beta), channels_last=True)


@contextmanager
def _fp16_decoder(model, checkpoint):
    """Decoder weights and activations in float16 (the package's VAE dtype), no fp32 guard."""
    dec = model.pretransform.model.decoder
    changes = []
    for _, m in dec.named_modules():
        for k, v in m.items():
            if isinstance(v, mx.array) and v.dtype == mx.float32:
                changes.append((m, k, v.astype(mx.float16)))
    vae = model.pretransform.model

    def decode16(latents):
        x = tap(dec, latents.astype(mx.float16).swapaxes(1, 2), "input", channels_last=True)
        return tap(vae, dec(x).swapaxes(1, 2))

    with replaced_parameters(changes), patched(vae, "decode", decode16):
        yield


# -- latents in, audio out ------------------------------------------------------------------------


def _latents_reshaped(self, latents):
    b, c, t = latents.shape
    x = latents.reshape(b, t, c)  # BUG: reshaped to channels-last instead of transposed
    x = tap(self.decoder, x, "input", channels_last=True)
    return tap(self, self.decoder(x).swapaxes(1, 2))


def _decode_returns_interleaved(self, latents):
    x = tap(self.decoder, latents.swapaxes(1, 2), "input", channels_last=True)
    y = self.decoder(x)                      # (B, N, C) channels-last
    b, n, c = y.shape
    return tap(self, y.reshape(b, c, n))     # BUG: interleaved frames read as planar rows


def _decode_chunked_no_overlap(self, latents):
    x = tap(self.decoder, latents.swapaxes(1, 2), "input", channels_last=True)
    # BUG: long latents decoded in chunks stitched end to end, no overlap: each chunk's edges
    # see zero padding instead of their neighbours (clicks at every chunk boundary)
    parts = [self.decoder(x[:, a:a + CHUNK_FRAMES]) for a in range(0, x.shape[1], CHUNK_FRAMES)]
    return tap(self, mx.concatenate(parts, axis=1).swapaxes(1, 2))


MUTANTS = [
    Mutant("convt-weight-norm-wrong-dim", f"{DECODER}.layers.1.layers.1",
           "upsampling filters mis-scaled per channel: wrong loudness and spectral tilt, "
           "harsh buzzy/metallic artefacts on otherwise right timing",
           _convt_weight_norm_wrong_dim),
    Mutant("convt-weight-layout", f"{DECODER}.layers.1.layers.1",
           "conv-transpose taps and channels scrambled: every upsampling stage smears energy "
           "into wrong phases of the stride: 'flickery', buzzing at the latent rate 21.5 Hz "
           "and the stride rates, metallic comb tones", _convt_layout),
    Mutant("convt-padding-off-by-one", f"{DECODER}.layers.1.layers.1",
           "each upsampling output shifted one sample against its stride grid: phase "
           "discontinuities at every latent frame: 'flickery' / comb at 21.5 Hz multiples",
           swap(ConvTranspose1d, "__call__", _convt_crop_off_by_one)),
    Mutant("conv-padding-off-by-one", f"{DECODER}.layers.0",
           "every 'same' conv shifted by one sample (and its right edge zeroed): channels "
           "misaligned across residual paths: dull, smeared, 'bad phone line' band-limited "
           "sound with edge clicks", swap(Conv1d, "__call__", _conv_pad_off_by_one)),
    Mutant("snake-no-exp", f"{DECODER}.layers.1.layers.0",
           "snake alpha/beta used without exp(): 1/beta blows up near beta = 0: harsh "
           "distortion, loud broadband noise, clipping", swap(SnakeBeta, "__call__", snake_no_exp)),
    Mutant("fp16-vae-overflow", f"{DECODER}.input",
           "VAE run in float16 without a guard: activations past 65504 would turn the clip "
           "to inf/NaN (not seen here: the tiny models and the synthetic full model at 32 "
           "frames stay finite); what shows is the fp16 rounding (of the latents first: the "
           "decoder's input, 73-74 dB, under the tiny 75 dB and trained 90 dB floors), "
           "inaudible: heard by no audio check on either tiny model", _fp16_decoder, audible=False),
    Mutant("latents-reshaped-not-transposed", f"{DECODER}.input",
           "latents (C, T) reshaped to (T, C) instead of transposed: time and channels "
           "scrambled before the decoder: 'flickery' noise bursts at the latent rate",
           swap(AudioAutoencoder, "decode", _latents_reshaped)),
    Mutant("decode-returns-interleaved", VAE,
           "the decoder's channels-last output read back as planar rows: each channel holds "
           "alternating L/R samples of half the clip: 'slow motion', an octave down, with a "
           "buzz at Nyquist", swap(AudioAutoencoder, "decode", _decode_returns_interleaved)),
    Mutant("decode-chunks-no-overlap", VAE,
           f"long latents decoded in {CHUNK_FRAMES}-frame chunks stitched without overlap: a "
           "click (a seam) every 186 ms at 44.1 kHz; clips under the chunk length are exact. "
           "inaudible on synthetic weights: their audio clip (16 frames) is under one chunk "
           "(seam_db 8.7 either way, threshold 30); on the trained model's 160-frame clip the "
           "seam detector flags it (41.5 vs 7.9 unmutated)",
           swap(AudioAutoencoder, "decode", _decode_chunked_no_overlap), audible=False),
]
