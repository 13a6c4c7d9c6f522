"""sao-harness adapter for an MLX port (here: a model tree named like the official one)."""
import json
from pathlib import Path

import mlx.core as mx
import numpy as np
from safetensors.numpy import load_file

from harness.model.config import ModelConfig, T5Config   # your port's config and model
from harness.model.pipeline import StableAudio
from harness.model.sampler import cfg_denoiser, logsnr_schedule, sample
from harness.ports.protocol import Conditioning, ModuleMap, Port, SamplerResult

# torch Conv1d (out, in, k) / ConvTranspose1d (in, out, k) <-> this port's (out, k, in)
TO_MLX = {"Conv1d": (0, 2, 1), "ConvTranspose1d": (1, 2, 0)}
TO_TORCH = {"Conv1d": (0, 2, 1), "ConvTranspose1d": (2, 0, 1)}


def as_np(a):
    return np.array(a.astype(mx.float32))


class MyPort(Port):
    name = "my-mlx-port"

    def load(self, checkpoint_dir):
        d = Path(checkpoint_dir)
        t5_cfg = T5Config.from_hf(json.loads((d / "t5/config.json").read_text()))
        cfg = ModelConfig.from_official(json.loads((d / "model_config.json").read_text()), t5_cfg)
        self.model = StableAudio(cfg)
        w = load_file(d / "model.safetensors")
        self.kinds = {k: type(m).__name__ for k, m in self.model.named_modules()}
        out = {}
        for key, v in w.items():   # this port's OWN converter: fuse weight norm, re-lay convs
            module, param = key.rsplit(".", 1)
            if param == "weight_g":
                continue
            if param == "weight_v":
                g = w[module + ".weight_g"].astype(np.float32)
                v = v.astype(np.float32)
                axes = tuple(i for i, n in enumerate(g.shape) if n == 1)
                v, param = v * (g / np.sqrt((v * v).sum(axis=axes, keepdims=True))), "weight"
            if param == "weight" and self.kinds.get(module) in TO_MLX:
                v = v.transpose(TO_MLX[self.kinds[module]])
            out[f"{module}.{param}"] = mx.array(v.astype(np.float32))
        t5 = load_file(d / "t5/model.safetensors")
        t5.pop("encoder.embed_tokens.weight", None)  # tied to shared.weight
        out.update({"conditioner.conditioners.prompt.model." + k: mx.array(v.astype(np.float32))
                    for k, v in t5.items()})
        self.model.load_weights(list(out.items()), strict=True)
        self.weights = out

    def encode_text(self, input_ids, attention_mask):
        t5 = self.model.conditioner.conditioners["prompt"].model
        ids, mask = (mx.array(a.astype(np.int32)) for a in (input_ids, attention_mask))
        return as_np(t5(ids, mask))

    def condition(self, input_ids, attention_mask, seconds_total):
        cross, global_ = self.model.condition(input_ids, attention_mask, seconds_total)
        return Conditioning(as_np(cross), as_np(global_))

    def dit_forward(self, x, t, cross, global_):
        return as_np(self.model.dit(mx.array(x), mx.array(t), mx.array(cross), mx.array(global_)))

    def sample(self, noise, step_noise, cond, steps, sampler, cfg_scale):
        xs = []
        cross, global_ = mx.array(cond.cross), mx.array(cond.global_)
        denoise = cfg_denoiser(self.model.dit, cross, global_, cfg_scale)
        x = sample(denoise, mx.array(noise), logsnr_schedule(steps), sampler,
                   [mx.array(n) for n in step_noise], on_step=lambda i, x: xs.append(as_np(x)))
        return SamplerResult(as_np(x), xs=xs)

    def decode(self, latents):
        return as_np(self.model.vae.decode(mx.array(latents)))

    def converted_weights(self):  # back to the official layout, weight norm left fused
        out = {}
        for key, v in self.weights.items():
            module, param = key.rsplit(".", 1)
            perm = TO_TORCH.get(self.kinds.get(module)) if param == "weight" else None
            out[key] = as_np(v) if perm is None else as_np(v).transpose(perm)
        return out

    def generate(self, input_ids, attention_mask, seconds_total, noise, step_noise, steps,
                 sampler, cfg_scale):
        cond = self.condition(input_ids, attention_mask, seconds_total)
        return self.decode(self.sample(noise, step_noise, cond, steps, sampler, cfg_scale).latents)

    def module_map(self):  # port module path -> official path (+ layout): per-layer divergence
        paths = {}
        for path, _ in self.model.named_modules():
            if path.startswith("pretransform.model.decoder"):
                paths[path] = (path, "channels_last")  # this port's convs run (B, T, C)
            elif path.startswith("model.model.transformer.layers.") or \
                    path.startswith("conditioner.conditioners.prompt.model.encoder.block."):
                paths[path] = path
        return ModuleMap("mlx", {"": self.model}, paths)
