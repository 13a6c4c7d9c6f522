"""diffusers (PyPI, Apache-2.0) as a port under test: its Oobleck VAE decoder and number
conditioner, with transformers' T5 encoder as diffusers' `StableAudioPipeline` uses it.

diffusers ships its checkpoint converter as a repository script, not in the wheel, so the
official -> diffusers name map is written here from the two module trees. Weight norm stays
unfused (diffusers keeps `weight_g`/`weight_v`, as the checkpoint does); snake alpha/beta are
reshaped to its (1, C, 1). The fp16 VAE is loaded into diffusers' default fp32 modules.

Not covered: the DiT. `StableAudioDiTBlock` builds both attentions with `Attention(...)` and
no `qk_norm`, so their `norm_q`/`norm_k` are None and no `StableAudioDiTModel` config field
sets them: the small model's 128 q_norm/k_norm tensors have no place. The sampler and
generate need that DiT. Any preset loads (the tiny synth too).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.model import prefixes
from harness.ports.protocol import Conditioning, ModuleMap, Port

VAE = prefixes.DECODER + "."
SECONDS = prefixes.SECONDS + ".embedder.embedding."
T5 = prefixes.T5 + "."
RESIDUAL = ("snake1", "conv1", "snake2", "conv2")  # official layers.0..3 of a residual unit


def decoder_modules(n_blocks: int) -> dict[str, str]:
    """diffusers OobleckDecoder module path -> official decoder module path."""
    m = {"conv1": "layers.0", "snake1": f"layers.{n_blocks + 1}",
         "conv2": f"layers.{n_blocks + 2}"}
    for j in range(n_blocks):
        o, d = f"layers.{j + 1}", f"block.{j}"
        m[d] = o
        m[f"{d}.snake1"], m[f"{d}.conv_t1"] = f"{o}.layers.0", f"{o}.layers.1"
        for r in range(3):
            m[f"{d}.res_unit{r + 1}"] = f"{o}.layers.{r + 2}"
            for k, sub in enumerate(RESIDUAL):
                m[f"{d}.res_unit{r + 1}.{sub}"] = f"{o}.layers.{r + 2}.layers.{k}"
    return m


def decoder_state(official: dict[str, np.ndarray], n_blocks: int) -> dict[str, np.ndarray]:
    """Official decoder tensors under diffusers names (snake parameters as (1, C, 1))."""
    to_port = {o: d for d, o in decoder_modules(n_blocks).items()}
    out = {}
    for name, a in official.items():
        if not name.startswith(VAE):
            continue
        module, param = name[len(VAE):].rsplit(".", 1)
        a = np.asarray(a, np.float32)
        out[f"{to_port[module]}.{param}"] = a.reshape(1, -1, 1) if param in ("alpha", "beta") else a
    return out


def _read(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    from harness.weights.safetensors_io import LazyTensors

    lazy = LazyTensors([(path, "")], check_finite=False)
    return {k: lazy[k] for k in lazy if k.startswith(names)}


def _t(a):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


class DiffusersPort(Port):
    name = "diffusers"

    def load(self, checkpoint_dir) -> None:
        import torch
        from diffusers import AutoencoderOobleck
        from diffusers.pipelines.stable_audio.modeling_stable_audio import (
            StableAudioNumberConditioner)
        from transformers import T5Config, T5EncoderModel

        ckpt = Path(checkpoint_dir)
        cfg = json.loads((ckpt / "model_config.json").read_text())["model"]
        dec = cfg["pretransform"]["config"]["decoder"]["config"]
        seconds = next(c for c in cfg["conditioning"]["configs"] if c["id"] == "seconds_total")
        official = _read(ckpt / "model.safetensors", (VAE, SECONDS))  # not the DiT's 1.4 GB
        self.n_blocks = len(dec["strides"])

        self.vae = AutoencoderOobleck(
            encoder_hidden_size=dec["channels"], downsampling_ratios=list(dec["strides"]),
            channel_multiples=list(dec["c_mults"]), decoder_channels=dec["channels"],
            decoder_input_channels=dec["latent_dim"], audio_channels=dec["out_channels"]).eval()
        self.vae.decoder.load_state_dict(
            {k: _t(v) for k, v in decoder_state(official, self.n_blocks).items()}, strict=True)

        self.seconds = StableAudioNumberConditioner(
            cfg["conditioning"]["cond_dim"], seconds["config"]["min_val"],
            seconds["config"]["max_val"]).eval()
        self.seconds.load_state_dict(
            {"time_positional_embedding." + k[len(SECONDS):]: _t(v)
             for k, v in official.items() if k.startswith(SECONDS)}, strict=True)

        t5_cfg = T5Config(**json.loads((ckpt / "t5" / "config.json").read_text()))
        self.t5 = T5EncoderModel(t5_cfg).eval()
        t5_state = _read(ckpt / "t5" / "model.safetensors", ("",))
        missing, unexpected = self.t5.load_state_dict({k: _t(v) for k, v in t5_state.items()},
                                                      strict=False)
        if unexpected or set(missing) - {"encoder.embed_tokens.weight"}:
            raise ValueError(f"t5/model.safetensors: missing {missing}, unexpected {unexpected}")
        torch.set_grad_enabled(False)

    # -- stages ---------------------------------------------------------------------------
    def encode_text(self, input_ids, attention_mask):
        out = self.t5(input_ids=_t(np.asarray(input_ids, np.int64)),
                      attention_mask=_t(np.asarray(attention_mask, np.int64)))
        return out.last_hidden_state.float().numpy()

    def condition(self, input_ids, attention_mask, seconds_total):
        # StableAudioPipeline.encode_prompt: padding zeroed by the attention mask
        text = self.encode_text(input_ids, attention_mask)
        text = text * np.asarray(attention_mask, np.float32)[:, :, None]
        secs = self.seconds(_t(np.asarray(seconds_total, np.float32))).float().numpy()  # (B,1,D)
        return Conditioning(np.concatenate([text, secs], axis=1).astype(np.float32),
                            np.ascontiguousarray(secs[:, 0]))

    def decode(self, latents):
        return self.vae.decode(_t(np.asarray(latents, np.float32))).sample.float().numpy()

    # -- weights and layers ---------------------------------------------------------------
    def converted_weights(self) -> dict[str, np.ndarray]:
        """Loaded tensors under official names and shapes (weight norm unfused, as stored)."""
        to_official = decoder_modules(self.n_blocks)
        out = {}
        for name, p in self.vae.decoder.state_dict().items():
            module, param = name.rsplit(".", 1)
            a = p.float().numpy()
            out[f"{VAE}{to_official[module]}.{param}"] = \
                a.reshape(-1) if param in ("alpha", "beta") else a
        for name, p in self.seconds.state_dict().items():
            out[SECONDS + name[len("time_positional_embedding."):]] = p.float().numpy()
        for name, p in self.t5.state_dict().items():
            out[T5 + name] = p.float().numpy()
        return out

    def module_map(self) -> ModuleMap:
        paths = {f"vae.{d}": VAE + o for d, o in decoder_modules(self.n_blocks).items()}
        paths.update({f"t5.encoder.block.{i}": f"{T5}encoder.block.{i}"
                      for i in range(len(self.t5.encoder.block))})
        return ModuleMap("torch", {"vae": self.vae.decoder, "t5": self.t5}, paths)
