"""Train the `tiny-trained` preset on real music with the official stable-audio-tools code.

Runs in the reference environment (torch + stable-audio-tools; see harness/reference):

    sao-harness synth --config tiny-trained --seed 0 --out init          # harness env
    python tools/train_tiny/corpus.py --out clips.npz                      # harness env
    python tools/train_tiny/train.py --init init --clips clips.npz --out harness/weights/data/tiny-trained

1. The VAE (encoder, bottleneck, decoder; real strides 2,4,4,8,8 = 2048) learns to reconstruct
   random 0.74 s crops seen with 4 latent frames of music each side; it decodes the posterior
   mean plus a little noise: multi-resolution STFT loss + waveform L1 + a small KL term.
2. Its latents are rescaled to unit standard deviation (the encoder's mean output and the
   decoder's input conv absorb the factor, so the pretransform scale stays 1.0, as official).
3. The DiT learns rectified flow (v = noise - x0, t logit-normal) on the encoded clips with
   random token ids and seconds_total, so it generates music-like latents for any prompt.
T5 and the number conditioner keep their seeded synthetic weights. Everything is seeded and runs
on one thread (see --threads); the loss curve goes to loss.csv beside this script.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("ENABLE_TORCH_COMPILE", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_audio_tools.models.bottleneck import vae_sample  # noqa: E402

from harness.reference.build import build_model, load_reference  # noqa: E402
from harness.weights.safetensors_io import write_safetensors  # noqa: E402

SR = 44100
# 16 latent frames: the decoder sees about +-9 frames (its input conv, then dilated residual
# units at 8x the latent rate); on 4-frame crops everything is zero-padded edge, and the
# trained decoder then buzzed at the frame rate on long clips (flicker 17-35 dB).
VAE_CROP = 16 * 2048
# 8192: 5.4 Hz bins resolve the decoder's stride combs (lines every 1378 / 5512 Hz) from the
# music around them; the smaller sizes cover transients.
STFT_SIZES = (8192, 2048, 512, 128)


def stft_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss per channel: spectral convergence + log-magnitude L1."""
    y, x = y.reshape(-1, y.shape[-1]), x.reshape(-1, x.shape[-1])
    total = 0.0
    for n in STFT_SIZES:
        w = torch.hann_window(n)
        Y = torch.stft(y, n, n // 4, window=w, return_complex=True).abs()
        X = torch.stft(x, n, n // 4, window=w, return_complex=True).abs()
        total = total + torch.linalg.norm(Y - X) / (torch.linalg.norm(X) + 1e-7) \
            + (torch.log(Y + 1e-5) - torch.log(X + 1e-5)).abs().mean()
    return total / len(STFT_SIZES)


# Stride periods of the decoder (2048 = the latent frame; 256, 32, 8 = its inner upsamplers):
# a decoder that adds the same waveform to every frame puts lines at k * sr / period into the
# spectrum of the whole crop. The crop is a whole number of frames starting on a frame of its
# decode, so the lines land on bins. Only the short-time STFT above sees nothing:
# its windows are shorter than the 16 frames the pattern repeats over.
COMB_PERIODS = (2048, 256, 32, 8)


def _line_excess(s: torch.Tensor, n: int, period: int, inner=2, outer=12) -> torch.Tensor:
    """log(line power / mean neighbour power) at each k * sr / period, (channels, lines)."""
    bins = torch.arange(1, period // 2) * (n // period)
    off = torch.cat([torch.arange(-outer, -inner + 1), torch.arange(inner, outer + 1)])
    neigh = s[:, bins[:, None] + off[None, :]].mean(-1)
    return torch.log(s[:, bins] + 1e-9) - torch.log(neigh + 1e-9)


def comb_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Whole-crop spectrum: mean excess of the decoder's comb lines over the original's (nats);
    the lines of a buzz at the frame rate and its harmonics stand over their neighbours."""
    y, x = y.reshape(-1, y.shape[-1]), x.reshape(-1, x.shape[-1])
    n = y.shape[-1]
    sy = torch.fft.rfft(y - y.mean(-1, keepdim=True)).abs() ** 2
    sx = torch.fft.rfft(x - x.mean(-1, keepdim=True)).abs() ** 2
    return sum(torch.relu(_line_excess(sy, n, p) - _line_excess(sx, n, p)).mean()
               for p in COMB_PERIODS) / len(COMB_PERIODS)


def _band_log_envelopes(x: torch.Tensor, hop=128, n_bands=16) -> torch.Tensor:
    """(batch, bands, frames): log energy of log-spaced bands (80 Hz - 16 kHz) of the mid
    signal every `hop` samples, time mean removed (as harness.audio.metrics measures flicker)."""
    mid = x.mean(1)
    spec = torch.stft(mid, 512, hop, window=torch.hann_window(512), return_complex=True)
    power = spec.abs() ** 2
    f = torch.fft.rfftfreq(512, 1 / SR)
    edges = torch.searchsorted(f, torch.tensor(np.geomspace(80, 16000, n_bands + 1),
                                               dtype=f.dtype))
    energy = torch.stack([power[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], 1)
    env = torch.log(energy + energy.mean().detach() * 1e-10 + 1e-12)
    return env - env.mean(-1, keepdim=True)


def flicker_loss(y: torch.Tensor, x: torch.Tensor, harmonics=4) -> torch.Tensor:
    """Gain flicker at the frame rate: prominence of the band envelopes' modulation spectrum at
    k x 21.5 Hz over its neighbours (bands summed coherently), the decoder's excess over the
    original's in nats. A gain that moves with the frame grid shifts the music's own partials
    to k x 21.5 Hz away: no comb line, so the comb term misses it."""
    def prominence(a):
        env = _band_log_envelopes(a)
        m = env.shape[-1] // 16 * 16  # 16 envelope frames per latent frame at hop 128
        spec = torch.fft.rfft(env[..., :m] * torch.hann_window(m, periodic=False), dim=-1)
        out = []
        for k in range(1, harmonics + 1):
            b = k * m // 16
            nb = torch.tensor([b - 3, b - 2, b + 2, b + 3])
            noise = (spec[..., nb].abs() ** 2).mean(-1, keepdim=True) + 1e-12
            comb = (spec / noise.sqrt()).sum(1)
            out.append(torch.log(comb[:, b].abs() ** 2 + 1e-12)
                       - torch.log((comb[:, nb].abs() ** 2).mean(-1) + 1e-12))
        return torch.stack(out, -1)
    return torch.relu(prominence(y) - prominence(x)).mean()


def level_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """|log power ratio| per channel: the spectral terms are mostly shape and let a decoder
    play 9-14 dB low (measured on the first weights)."""
    return (torch.log(y.pow(2).mean(-1) + 1e-8) - torch.log(x.pow(2).mean(-1) + 1e-8)).abs().mean()


def roughness(mean: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame change of the latent means over twice their variance: 1 - the lag-1
    autocorrelation (0 smooth, 1 white, 2 alternating). Trial 8's encoder alternated (lag-1
    autocorrelation -0.49 / -0.55 on the held-out clips): a decoder interpolating between
    frames of opposite sign dips at every frame boundary, a gain flicker at 21.5 Hz that no
    decoder weight removes (held-out flicker 19 dB with the upsamplers balanced)."""
    d = mean[..., 1:] - mean[..., :-1]
    c = mean - mean.mean(-1, keepdim=True)
    return d.pow(2).mean() / (2 * c.pow(2).mean() + 1e-8)


MIN_CROP_RMS = 10 ** (-45 / 20)  # rests and fades: the STFT loss divides by the target's norm


def crops(clips: list[np.ndarray], rng: np.random.Generator, batch: int, n: int) -> np.ndarray:
    out = np.empty((batch, 2, n), np.float32)
    for b in range(batch):
        while True:  # near-silent crops made the loss spike 10-50x (measured: 3.7 -> 182)
            c = clips[rng.integers(len(clips))]
            s = rng.integers(c.shape[-1] - n)
            x = c[:, s:s + n]
            if np.sqrt(np.mean(x ** 2)) >= MIN_CROP_RMS:
                break
        gain = 10 ** (rng.uniform(-9, 0) / 20)  # level variety; never louder than the master
        out[b] = (x[::-1] if rng.random() < 0.5 else x) * gain
    return out


WARMUP = 25


@torch.no_grad()
def balance_upsamplers(ae) -> None:
    """Project every decoder upsampler (ConvTranspose1d, kernel 2 x stride) onto the kernels
    whose output phases share one DC gain: each output phase q sums taps q and q + stride, and
    when those sums differ by phase a constant input decodes to a waveform repeating every
    stride, the per-frame buzz (trial 8's decoder: imbalance 0.47-0.88 of the sums' power, a
    constant latent decoded to a 2048-sample template 10 dB under the music). The condition is
    linear and per (in, out) channel pair, so projecting weight_v keeps it under weight_norm's
    per-channel gain; applied at the init and after every step (projected gradient)."""
    for m in ae.decoder.modules():
        if isinstance(m, torch.nn.ConvTranspose1d):
            s, v = m.stride[0], m.weight_v
            assert v.shape[-1] == 2 * s, "the oobleck upsampler's kernel is 2 x stride"
            d = v[..., :s] + v[..., s:]
            d = (d - d.mean(-1, keepdim=True)) / 2
            v[..., :s] -= d
            v[..., s:] -= d


def train_vae(ae, clips, rng, steps, lr, log, kl_weight=1e-4, batch=2, crop=VAE_CROP,
              latent_noise=None, context=0, wave_weight=1.0, comb_weight=0.0,
              flicker_weight=0.0, level_weight=0.0, smooth_weight=0.0, smooth_hinge=0.0,
              balance_from=None, budget_s=float("inf")):
    """Defaults: the first weights' recipe (the decoder on the bottleneck's samples, MR-STFT +
    waveform L1 + KL); main()'s defaults are the committed one (trial 8 of
    tools/train_tiny/README.md: latent_noise 0.1, context 4). The knobs:
    latent_noise: decode mean + latent_noise * N(0, std of the means) instead of a sample;
    context: latent frames of music on each side of the crop that the encoder and decoder see
    (the loss is on the crop only), so the crop's latents are not all near a zero-padded edge;
    comb/flicker/level_weight: the whole-crop comb, frame-rate flicker and level terms;
    smooth_weight: the latents' roughness (frame-to-frame change) past smooth_hinge (0: all
    of it; trial 9 smoothed to 0.08, past what the music needs, and lost level and image);
    balance_from: from this step on, keep the decoder's upsamplers phase-balanced
    (balance_upsamplers; None: never)."""
    params = [p for p in ae.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))
    warmup = min(WARMUP, steps // 4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / max(warmup, 1))
                                              * (0.55 + 0.45 * np.cos(np.pi * i / steps)))
    ae.train()
    t0 = time.perf_counter()
    nan = torch.tensor(float("nan"))
    for step in range(steps):
        balance = balance_from is not None and step >= balance_from
        if step == balance_from:
            balance_upsamplers(ae)
        wide = torch.from_numpy(crops(clips, rng, batch, crop + 2 * context * 2048))
        x = wide[..., context * 2048:context * 2048 + crop]
        mean, scale = ae.encoder(wide).chunk(2, dim=1)
        z, kl = vae_sample(mean, scale)  # the official bottleneck (ae.encode's own call)
        if latent_noise is not None:
            z = mean + latent_noise * torch.randn_like(mean) * mean.detach().std()
        y = ae.decoder(z)[..., context * 2048:context * 2048 + crop]
        spec = stft_loss(y, x)
        wave = (y - x).abs().mean()
        comb = comb_loss(y, x) if comb_weight else nan
        flick = flicker_loss(y, x) if flicker_weight else nan
        level = level_loss(y, x) if level_weight else nan
        rough = roughness(mean)
        loss = spec + wave_weight * wave + kl_weight * kl
        for w, term in ((comb_weight, comb), (flicker_weight, flick), (level_weight, level),
                        (smooth_weight, torch.relu(rough - smooth_hinge))):
            if w:
                loss = loss + w * term
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if balance:
            balance_upsamplers(ae)
        sched.step()
        log("vae", step, loss.item(), spec.item(), wave.item(), kl.item(), time.perf_counter() - t0,
            comb.item(), flick.item(), level.item(), rough.item())
        if time.perf_counter() - t0 > budget_s:
            break  # the step count reached goes to loss.csv: pass it as --vae-steps to repeat
    ae.eval()
    for p in params:
        p.requires_grad_(False)


@torch.no_grad()
def encode_means(ae, clips) -> list[torch.Tensor]:
    out = []
    for c in clips:
        n = c.shape[-1] // 2048 * 2048
        h = ae.encoder(torch.from_numpy(np.ascontiguousarray(c[None, :, :n])))
        out.append(h[:, : h.shape[1] // 2])  # the bottleneck's mean half
    return out


@torch.no_grad()
def fix_output_level(ae, clips, means, seconds=10.0) -> float:
    """Scale the decoder's output conv (no bias, no tanh: the audio scales with it) so whole
    training clips decode at their own power: crops see zero padding past their context, whole
    clips do not, and the decoder played whole clips at another level than its crops (README).
    Measured on the first `seconds` of each clip; returns the correction in dB."""
    frames = int(seconds * SR) // 2048
    ratios = []
    for c, z in zip(clips, means):
        y = ae.decoder(z[..., :frames]).numpy()[0]
        x = c[:, :frames * 2048]
        ratios.append(10 * np.log10(np.mean(y ** 2) / np.mean(x ** 2)))
    db = float(np.mean(ratios))
    out = [m for m in ae.decoder.modules() if hasattr(m, "weight_g")][-1]
    out.weight_g /= 10 ** (db / 20)
    return -db


@torch.no_grad()
def rescale_latents(ae, scale: float) -> None:
    """Latents / scale out of the encoder, x scale into the decoder: decode(encode(x)) is
    unchanged and the latents have unit std. weight_norm: w = g v/|v|, so scaling g scales w."""
    enc_out = [m for m in ae.encoder.modules() if hasattr(m, "weight_g")][-1]
    dec_in = [m for m in ae.decoder.modules() if hasattr(m, "weight_g")][0]
    half = enc_out.weight_g.shape[0] // 2
    enc_out.weight_g[:half] /= scale
    enc_out.bias[:half] /= scale
    dec_in.weight_g *= scale


def conditioning(model, rng, batch, max_length, vocab):
    tok = model.conditioner.conditioners["prompt"].tokenizer
    ids = np.zeros((batch, max_length), np.int64)
    mask = np.zeros((batch, max_length), np.int64)
    for b in range(batch):
        n = int(rng.integers(1, max_length))
        ids[b, :n - 1] = rng.integers(2, vocab, n - 1)
        ids[b, n - 1] = 1  # EOS
        mask[b, :n] = 1
    tok.input_ids, tok.attention_mask = torch.from_numpy(ids), torch.from_numpy(mask)
    meta = [{"prompt": "", "seconds_total": float(rng.uniform(1, 30))} for _ in range(batch)]
    with torch.no_grad():
        cond = model.get_conditioning_inputs(model.conditioner(meta, "cpu"))
    return {k: v for k, v in cond.items() if v is not None}


def train_dit(model, latents, rng, steps, lr, log, batch=16, frames=(32, 64, 128), cfg=None,
              budget_s=float("inf")):
    dit = model.model  # DiTWrapper, what sample_rf calls
    params = list(dit.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr / 10)
    dit.train()
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    t0 = time.perf_counter()
    for step in range(steps):
        n = frames[step % len(frames)]
        b = batch * frames[0] // n
        x0 = torch.stack([z[0, :, s:s + n] for z in
                          (latents[rng.integers(len(latents))] for _ in range(b))
                          for s in [int(rng.integers(z.shape[-1] - n))]])
        cond = conditioning(model, rng, b, cfg.max_length, cfg.t5.vocab_size)
        t = torch.sigmoid(torch.randn(b, generator=gen))
        noise = torch.randn(x0.shape, generator=gen)
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
        v = dit(xt, t, cfg_scale=1.0, cfg_dropout_prob=0.0, **cond)
        loss = torch.mean((v - (noise - x0)) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        log("dit", step, loss.item(), *[float("nan")] * 3, time.perf_counter() - t0,
            *[float("nan")] * 4)
        if time.perf_counter() - t0 > budget_s:
            break
    dit.eval()
    for p in params:
        p.requires_grad_(False)


def save(model, ckpt, out: Path) -> None:
    """model.safetensors in the dtypes of the init checkpoint (DiT F32, VAE F16); the T5
    folder copied as it is; model_config.json unchanged."""
    sd = model.state_dict()
    tensors = {k: sd[k].detach().numpy().astype(v.dtype) for k, v in ckpt.weights.items()}
    tmp = out.with_name(f".{out.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(ckpt.root / "t5", tmp / "t5")
    shutil.copy2(ckpt.root / "model_config.json", tmp / "model_config.json")
    write_safetensors(tmp / "model.safetensors", tensors)
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", type=Path, required=True, help="seeded tiny-trained checkpoint")
    ap.add_argument("--clips", type=Path, required=True, help="corpus.py output")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--loss-csv", type=Path, default=Path(__file__).with_name("loss.csv"),
                    help="the loss curve (default: %(default)s, beside this script)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae-steps", type=int, default=800)
    ap.add_argument("--dit-steps", type=int, default=600)
    ap.add_argument("--vae-lr", type=float, default=5e-4)
    ap.add_argument("--vae-batch", type=int, default=1)
    ap.add_argument("--dit-lr", type=float, default=1e-3)
    # One thread: on a shared 2-core machine torch's OpenMP workers spin-wait at every op's
    # barrier for a thread the scheduler has parked; a VAE step measured 7-22 s on 2 threads
    # at load 6 and 0.56 s on 1.
    ap.add_argument("--threads", type=int, default=1)
    # The trials' knobs (README); the defaults are the committed weights' recipe (trial 8).
    ap.add_argument("--latent-noise", type=float, default=0.1,
                    help="decode the posterior mean plus this much noise (x the means' std) "
                         "instead of the bottleneck's sample; negative: the sample (the first "
                         "weights' recipe) (default: %(default)s)")
    ap.add_argument("--level-fix", action="store_true",
                    help="after the VAE phase, scale the decoder's output so whole training "
                         "clips decode at their own level")
    ap.add_argument("--context", type=int, default=4,
                    help="latent frames of music each side of the crop (default: %(default)s)")
    ap.add_argument("--wave-weight", type=float, default=1.0)
    ap.add_argument("--comb-weight", type=float, default=0.0)
    ap.add_argument("--flicker-weight", type=float, default=0.0)
    ap.add_argument("--level-weight", type=float, default=0.0)
    ap.add_argument("--smooth-weight", type=float, default=0.0,
                    help="weight of the latents' roughness (1 - lag-1 autocorrelation)")
    ap.add_argument("--smooth-hinge", type=float, default=0.0,
                    help="penalize the roughness only past this (default: %(default)s)")
    ap.add_argument("--balance-from", type=int, default=-1,
                    help="keep the decoder's upsamplers phase-balanced (no per-frame template) "
                         "from this VAE step on: the decoder trains free, then around the "
                         "projection; negative: never (default: %(default)s)")
    ap.add_argument("--balance", action="store_const", const=0, dest="balance_from",
                    help="--balance-from 0 (trials 9-12)")
    ap.add_argument("--vae-minutes", type=float, default=float("inf"),
                    help="stop the VAE phase early after this long (the shared machine's speed "
                         "varies; loss.csv records the steps reached)")
    ap.add_argument("--dit-minutes", type=float, default=float("inf"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # decaying snake/weight-norm gradients must not go subnormal
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = np.load(args.clips)
    clips = [data[k].astype(np.float32) / 32767 for k in sorted(data.files)]

    from harness.model.config import ModelConfig, T5Config

    model, ckpt = load_reference(args.init)
    cfg = ModelConfig.from_official(ckpt.config, T5Config.from_hf(ckpt.t5_config))
    ae = model.pretransform.model
    # The VAE starts from the package's own (seeded) init, not the synthetic checkpoint's: that
    # one is made for goldens and decodes at +24 dB over its input with latents of std 6 (loss
    # 21.6, unstable under Adam); the package's init gives std 0.75, -5 dB, loss 11.2.
    ae.load_state_dict(build_model(ckpt.config, ckpt.t5_config).pretransform.model.state_dict())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    t_start = time.perf_counter()

    def log(phase, step, loss, spec, wave, kl, seconds, comb, flicker, level, rough):
        rows.append((phase, step, loss, spec, wave, kl, round(seconds, 2), comb, flicker, level,
                     rough))
        if step % 10 == 0:
            print(f"{phase} {step} loss {loss:.4f} roughness {rough:.3f} ({seconds:.0f} s)",
                  flush=True)

    train_vae(ae, clips, rng, args.vae_steps, args.vae_lr, log, batch=args.vae_batch,
              latent_noise=None if args.latent_noise < 0 else args.latent_noise,
              context=args.context, wave_weight=args.wave_weight,
              comb_weight=args.comb_weight, flicker_weight=args.flicker_weight,
              level_weight=args.level_weight, smooth_weight=args.smooth_weight,
              smooth_hinge=args.smooth_hinge,
              balance_from=None if args.balance_from < 0 else args.balance_from,
              budget_s=60 * args.vae_minutes)
    means = encode_means(ae, clips)
    if args.level_fix:
        print(f"decoder output level fixed by {fix_output_level(ae, clips, means):+.2f} dB",
              flush=True)
    scale = float(torch.cat([m.flatten() for m in means]).std())
    rescale_latents(ae, scale)
    latents = [m / scale for m in means]
    print(f"latent std before rescale {scale:.4f}", flush=True)
    train_dit(model, latents, rng, args.dit_steps, args.dit_lr, log, cfg=cfg,
              budget_s=60 * args.dit_minutes)
    save(model, ckpt, args.out)
    with open(args.loss_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phase", "step", "loss", "stft", "wave_l1", "kl", "seconds", "comb",
                    "flicker", "level", "roughness"])
        w.writerows(rows)
    print(f"trained in {time.perf_counter() - t_start:.0f} s -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
