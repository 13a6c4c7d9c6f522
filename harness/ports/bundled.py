"""The bundled MLX model as a port adapter: the default port, and the model every other port's
latency and audio are set beside.

Its own converter is the harness's strict loader (`load_model`). It records intermediates
through the model's own taps (`capture`), which name more places than module outputs (RoPE'd
q/k, sampler steps), and replays golden tensors through them (teacher forcing); other MLX or
torch ports get the same from a `module_map` (see `harness.ports.capture`).

The sampler and CFG are looked up on `harness.model.pipeline` at call time, as
`StableAudio.run` does, so a mutant patched there reaches this adapter too.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from harness.ports.protocol import Conditioning, Port, SamplerResult


def _mx(a, dtype=None):
    import mlx.core as mx

    return mx.array(np.asarray(a, dtype=dtype))


def _np(a) -> np.ndarray:
    import mlx.core as mx

    return np.array(a.astype(mx.float32))


class BundledPort(Port):
    name = "bundled"

    def load(self, checkpoint_dir: Path) -> None:
        from harness.weights.load import load_model

        self.model, self.ckpt = load_model(checkpoint_dir)

    def encode_text(self, input_ids, attention_mask):
        t5 = self.model.conditioner.conditioners["prompt"].model
        return _np(t5(_mx(input_ids, np.int32), _mx(attention_mask, np.int32)))

    def condition(self, input_ids, attention_mask, seconds_total):
        cross, global_ = self.model.condition(input_ids, attention_mask, seconds_total)
        return Conditioning(_np(cross), _np(global_))

    def dit_forward(self, x, t, cross, global_):
        return _np(self.model.dit(_mx(x, np.float32), _mx(t, np.float32),
                                  _mx(cross, np.float32), _mx(global_, np.float32)))

    def sample(self, noise, step_noise, cond, steps, sampler, cfg_scale):
        import mlx.core as mx

        from harness.model import pipeline
        from harness.model.capture import recording

        denoise = pipeline.cfg_denoiser(self.model.dit, _mx(cond.cross, np.float32),
                                        _mx(cond.global_, np.float32), cfg_scale)
        keep = lambda n: n.startswith("sampler.steps.")  # noqa: E731
        with recording(keep) as rec:
            x = pipeline.sample(denoise, _mx(noise, np.float32), pipeline.logsnr_schedule(steps),
                                sampler, [_mx(n, np.float32) for n in step_noise])
            mx.eval(x, *rec.tensors.values())
        got = {n: _np(v) for n, v in rec.tensors.items()}

        def per_step(kind):
            seq = [got.get(f"sampler.steps.{i}.{kind}") for i in range(steps)]
            return None if any(s is None for s in seq) else seq

        return SamplerResult(_np(x), per_step("x"), per_step("denoised"), per_step("v"))

    def decode(self, latents):
        return _np(self.model.vae.decode(_mx(latents, np.float32)))

    def generate(self, input_ids, attention_mask, seconds_total, noise, step_noise, steps,
                 sampler, cfg_scale):
        _, audio = self.model.run(input_ids, attention_mask, seconds_total, noise,
                                  list(step_noise), steps=steps, sampler=sampler,
                                  cfg_scale=cfg_scale)
        return _np(audio)

    def converted_weights(self) -> dict[str, np.ndarray]:
        """The loaded parameters, re-laid to the official layout (weight norm stays fused)."""
        from mlx.utils import tree_flatten

        from harness.weights.convert import mlx_to_official

        flat = {k: _np(v) for k, v in tree_flatten(self.model.parameters())}
        return mlx_to_official(flat, self.model.config)

    @contextmanager
    def capture(self, names, reference=None):
        """Record `names` (official paths) during the block, into the yielded dict; with
        `reference` ({name: golden array}) each output is replaced by the golden's."""
        import mlx.core as mx

        from harness.compare.divergence import teacher_forcing
        from harness.model.capture import recording

        out: dict[str, np.ndarray] = {}
        wanted = set(names)
        forcing = teacher_forcing(reference, Path("golden")) if reference else nullcontext()
        with recording(keep=wanted.__contains__) as rec, forcing:
            yield out
            mx.eval(*rec.tensors.values())
        out.update({n: _np(v) for n, v in rec.tensors.items()})
