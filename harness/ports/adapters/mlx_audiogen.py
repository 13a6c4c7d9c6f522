"""mlx-audiogen (PyPI, Apache-2.0) as a port under test: `mlx_audiogen.models.stable_audio`.

Built as its users build it: `convert.convert_stable_audio` (its own converter: key renaming,
weight-norm fusion, conv transposes) writes its split files, `StableAudioPipeline.from_pretrained`
loads them. Offline: the converter's hub download is replaced by the local checkpoint (its T5
comes from "stable-audio-open-1.0"'s text_encoder, here the checkpoint's t5/), its tokenizer
download by the checkpoint's spiece.model, and the network is shut while it runs.

Stages run the package's own modules. `condition` calls its `Conditioners.__call__` with the
tokenizer replaced by the golden's token ids (padded to the 128 tokens the port pads to).
It has Euler and RK4 samplers only: pingpong is not covered. `generate` is its
`StableAudioPipeline.generate` with the injected initial noise in place of `mx.random.normal`.
Its full-size-only converter hard-codes T5-base, a 768-wide number embedder and the full VAE,
so the tiny synth does not load (see README "Shipped ports: findings").
"""

from __future__ import annotations

import contextlib
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from harness.model import prefixes
from harness.ports.adapters.offline import TokenIds, no_network, patched, t5_tokenizer
from harness.ports.protocol import Conditioning, ModuleMap, NotCovered, Port, SamplerResult

REPO_ID = "stabilityai/stable-audio-open-small"
T5_REPO_ID = "stabilityai/stable-audio-open-1.0"  # where its converter fetches T5 from
T5 = prefixes.T5 + "."
SECONDS = prefixes.SECONDS + ".embedder.embedding."
DIT = prefixes.DIT + "."


def _mx(a, dtype=np.float32):
    import mlx.core as mx

    return mx.array(np.asarray(a, dtype=dtype))


def _np(a) -> np.ndarray:
    import mlx.core as mx

    return np.array(a.astype(mx.float32))


class MlxAudiogenPort(Port):
    name = "mlx-audiogen"

    def load(self, checkpoint_dir) -> None:
        from mlx_audiogen.models.stable_audio import convert
        from mlx_audiogen.models.stable_audio.pipeline import StableAudioPipeline

        ckpt = Path(checkpoint_dir)
        with tempfile.TemporaryDirectory(prefix="sao-mlx-audiogen-") as tmp, \
                contextlib.redirect_stdout(sys.stderr), no_network(self.name):
            hub = {REPO_ID: ckpt, T5_REPO_ID: Path(tmp) / "sao-1.0"}
            (hub[T5_REPO_ID] / "text_encoder").mkdir(parents=True)
            (hub[T5_REPO_ID] / "text_encoder" / "model.safetensors").symlink_to(
                (ckpt / "t5" / "model.safetensors").resolve())

            def download_model(repo_id, allow_patterns=None, revision=None, force=False):
                if repo_id not in hub:
                    raise OSError(f"offline: {repo_id} is not in the local checkpoint")
                return hub[repo_id]

            def save_tokenizer(output_dir, repo_id):
                t5_tokenizer(ckpt).save_pretrained(str(output_dir))

            out = Path(tmp) / "converted"
            with patched(convert, "download_model", download_model), \
                    patched(convert, "_save_tokenizer", save_tokenizer):
                convert.convert_stable_audio(REPO_ID, out)
            # loads copy every tensor into MLX arrays: the temp files can go afterwards
            self.pipe = StableAudioPipeline.from_pretrained(weights_dir=str(out), repo_id=REPO_ID)

    # -- stages ---------------------------------------------------------------------------
    def encode_text(self, input_ids, attention_mask):
        t5 = self.pipe.conditioners.t5
        return _np(t5(_mx(input_ids, np.int32), _mx(attention_mask, np.int32)))

    @contextlib.contextmanager
    def _token_ids(self, input_ids, attention_mask):
        with patched(self.pipe.conditioners, "tokenizer", TokenIds(input_ids, attention_mask)):
            yield

    def condition(self, input_ids, attention_mask, seconds_total):
        with self._token_ids(input_ids, attention_mask):
            cross, global_ = self.pipe.conditioners("prompt", _mx(seconds_total))
        return Conditioning(_np(cross), _np(global_))

    def dit_forward(self, x, t, cross, global_):
        return _np(self.pipe.dit(_mx(x), _mx(t), _mx(cross), _mx(global_)))

    def sample(self, noise, step_noise, cond, steps, sampler, cfg_scale):
        import mlx.core as mx
        from mlx_audiogen.models.stable_audio import sampling

        if sampler != "euler":
            raise NotCovered(f"mlx-audiogen has no {sampler} sampler (sampling.py: euler, rk4)")
        if cfg_scale != 1.0:  # its unconditional branch is T5 of a negative prompt (text)
            raise NotCovered("mlx-audiogen's CFG takes a negative prompt's T5 tokens, not the "
                             "zeroed condition; only cfg 1 is compared")
        cross, glob = _mx(cond.cross), _mx(cond.global_)
        inputs, vs = [], []

        def model_fn(x, t, c, g):
            v = self.pipe.dit(x, t, c, g)
            mx.eval(v)
            inputs.append(_np(x))
            vs.append(_np(v))
            return v

        with contextlib.redirect_stdout(sys.stderr):
            x = sampling.sample_euler(model_fn, _mx(noise), sampling.get_rf_schedule(steps, 1.0),
                                      cross, None, glob, 1.0, steps)
        final = _np(x)
        return SamplerResult(final, inputs[1:] + [final], None, vs)

    def decode(self, latents):
        # its VAE is channels-last: (B, T, C) in, (B, N, 2) out
        audio = self.pipe.vae.decode(_mx(latents).transpose(0, 2, 1))
        return np.ascontiguousarray(_np(audio).transpose(0, 2, 1))

    def generate(self, input_ids, attention_mask, seconds_total, noise, step_noise, steps,
                 sampler, cfg_scale):
        import mlx.core as mx

        if sampler != "euler":
            raise NotCovered(f"mlx-audiogen has no {sampler} sampler (sampling.py: euler, rk4)")
        if noise.shape[0] != 1 or cfg_scale != 1.0:
            raise NotCovered("mlx-audiogen's generate makes one clip per call; its CFG takes a "
                             "negative prompt (only cfg 1 is driven)")
        # Its generate draws (1, 64, int(seconds * 21.53)) frames; the injected noise sets the
        # frame count instead (the official model always makes sample_size // 2048 frames).
        injected = _mx(noise)
        with self._token_ids(input_ids, attention_mask), contextlib.redirect_stdout(sys.stderr), \
                patched(mx.random, "normal", lambda *a, **k: injected):
            audio = self.pipe.generate("prompt", seconds_total=float(seconds_total[0]),
                                       steps=steps, cfg_scale=float(cfg_scale), seed=0,
                                       sampler=sampler)
        return _np(audio)

    # -- weights and layers ---------------------------------------------------------------
    def converted_weights(self) -> dict[str, np.ndarray]:
        """Its loaded parameters under official names, in the official layout."""
        from mlx.utils import tree_flatten

        out = {}
        for k, v in tree_flatten(self.pipe.dit.parameters()):
            out[DIT + _dit_name(k)] = _torch_conv(np.array(v), k, transpose=False)
        for k, v in tree_flatten(self.pipe.vae.parameters()):
            name = k.replace("layers.layers.", "layers.")
            convt = re.fullmatch(r"decoder\.layers\.\d+\.layers\.1\.weight", name) is not None
            out[f"{prefixes.VAE}.{name}"] = _torch_conv(np.array(v), name, convt)
        for k, v in tree_flatten(self.pipe.conditioners.t5.parameters()):
            out[T5 + _t5_name(k)] = np.array(v)
        emb = self.pipe.conditioners.seconds_total
        out[SECONDS + "0.weights"] = np.array(emb.freqs)
        out[SECONDS + "1.weight"] = np.array(emb.linear_w)
        out[SECONDS + "1.bias"] = np.array(emb.linear_b)
        return out

    def module_map(self) -> ModuleMap:
        dit = self.pipe.dit
        paths = {p: p for p in ("to_cond_embed", "to_global_embed", "timestep_features",
                                "to_timestep_embed", "transformer.project_in")}
        paths = {f"dit.{p}": DIT + o for p, o in paths.items()}
        for conv in ("preprocess_conv", "postprocess_conv"):
            paths[f"dit.{conv}"] = (DIT + conv, "channels_last")
        for i in range(dit.num_blocks):
            for sub in ("self_attn.q_norm", "self_attn.k_norm", "self_attn", "cross_attn.q_norm",
                        "cross_attn.k_norm", "cross_attn", "ff", ""):
                port = f"dit.block_{i}" + (f".{sub}" if sub else "")
                paths[port] = DIT + f"transformer.layers.{i}" + (f".{sub}" if sub else "")
        # project_out is left out: the port drops the global token before it, the official
        # module after it, so the two outputs differ by a row by construction.
        return ModuleMap("mlx", {"dit": dit}, paths)


def _dit_name(k: str) -> str:
    """The port's DiT parameter path -> official (inverse of its load_weights remap)."""
    m = re.match(r"block_(\d+)\.(.*)", k)
    if m:
        rest = m.group(2).replace(".ff.layers.", ".ff.")
        rest = re.sub(r"(pre_norm|cross_attend_norm|ff_norm)\.weight$", r"\1.gamma", rest)
        rest = re.sub(r"(pre_norm|cross_attend_norm|ff_norm)\.bias$", r"\1.beta", rest)
        return f"transformer.layers.{m.group(1)}.{rest}"
    return re.sub(r"^(to_\w+_embed)\.layers\.", r"\1.", k)


def _t5_name(k: str) -> str:
    for port, hf in ((".self_attn.", ".layer.0.SelfAttention."),
                     (".self_attn_norm.", ".layer.0.layer_norm."),
                     (".ff.", ".layer.1.DenseReluDense."), (".ff_norm.", ".layer.1.layer_norm.")):
        k = k.replace(port, hf)
    return k


def _torch_conv(w: np.ndarray, name: str, transpose: bool) -> np.ndarray:
    """MLX conv weights (O, K, I) back to torch: Conv1d (O, I, K), ConvTranspose1d (I, O, K)."""
    if w.ndim != 3 or not name.endswith("weight"):
        return w
    return np.ascontiguousarray(w.transpose(2, 0, 1) if transpose else w.transpose(0, 2, 1))
