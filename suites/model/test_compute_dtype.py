"""`load_model(dtype=float16)` computes in float16, as the official half-precision path does
(`model.to(float16)`, T5 in float16, the pretransform's `model_half`): every recorded module
output of a real run on the seeded tiny checkpoint is float16, except the three tensors the
official code itself makes float32. A float32 load computes in float32 throughout.

Inside modules, where no tap records, float32 stays where the official code keeps it (the
RoPE cos/sin tables and the rotation, rounded back to float16 after it; seconds_total's
clamp-and-normalize) and where the kernels accumulate in it as torch's half-precision ones do
(softmax of attention, as MLX's precise softmax; layer and RMS norms, mx.fast; fastmath's
snake, SiLU and exp range reductions, whose rounding constant is inf in float16).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from harness.golden.inputs import make_inputs
from harness.model import prefixes
from harness.model.capture import recording

# name -> why it is float32 in a float16 run (each as in the official code)
FLOAT32_BY_DESIGN = {
    "conditioner.conditioners.prompt": "the T5 conditioner's `* attention_mask.float()`",
    "conditioner.cross_attn_cond": "cat(float32 prompt, float16 seconds) promotes, as "
                                   "torch.cat does; the DiT casts it at entry",
    "output.audio": "the pretransform's `.float()` of the decoded audio",
}
# module paths a run must have recorded, so the dtype check cannot pass on an empty record
COVERED = (f"{prefixes.T5}.encoder.block.", f"{prefixes.DIT}.transformer.layers.",
           f"{prefixes.DIT}.timestep_features", "sampler.steps.", f"{prefixes.DECODER}.layers.",
           f"{prefixes.DIT}.cfg")


def recorded_dtypes(model) -> dict[str, mx.Dtype]:
    """Every tapped tensor of a 2-step cfg 2 run (cond and uncond branches, pingpong noise)."""
    cfg = model.config
    x = make_inputs(seed=0, io_channels=cfg.dit.io_channels, frames=8, steps=2,
                    max_length=cfg.max_length, vocab_size=cfg.t5.vocab_size, lengths=(9,),
                    seconds=(3.0,))
    with recording() as rec:
        latents, audio = model.run(x.input_ids, x.attention_mask, x.seconds_total, x.noise,
                                   list(x.step_noise), steps=2, cfg_scale=2.0)
        mx.eval(latents, audio, *rec.tensors.values())
    assert all(np.isfinite(np.array(v.astype(mx.float32))).all() for v in rec.tensors.values())
    for prefix in COVERED:
        assert any(n.startswith(prefix) for n in rec.tensors), f"nothing recorded under {prefix}"
    return {n: v.dtype for n, v in rec.tensors.items()}


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    from harness.weights.load import load_model

    return {dtype: load_model(tiny_checkpoint, dtype)[0] for dtype in (mx.float16, mx.float32)}


def test_float16_load_computes_in_float16(loaded):
    dtypes = recorded_dtypes(loaded[mx.float16])
    wrong = {n: d for n, d in dtypes.items() if (d == mx.float32) != (n in FLOAT32_BY_DESIGN)
             or d not in (mx.float16, mx.float32)}
    assert not wrong, (f"{len(wrong)} of {len(dtypes)} recorded tensors in an unexpected "
                       f"dtype (float32 only for {sorted(FLOAT32_BY_DESIGN)}): "
                       f"{dict(list(wrong.items())[:5])}")


def test_float16_decoder_casts_float32_latents(loaded):
    """A direct `vae.decode` of float32 latents (the gate's drift stage, ports) runs the
    decoder in float16 too: the cast is at the decoder's entry, not in the sampler."""
    model = loaded[mx.float16]
    latents = mx.array(np.random.default_rng(1).standard_normal(
        (1, model.config.vae.latent_dim, 4), dtype=np.float32))
    with recording() as rec:
        audio = model.vae.decode(latents)
    assert audio.dtype == mx.float16
    assert {v.dtype for v in rec.tensors.values()} == {mx.float16}


def test_float32_load_computes_in_float32(loaded):
    dtypes = recorded_dtypes(loaded[mx.float32])
    wrong = {n: d for n, d in dtypes.items() if d != mx.float32}
    assert not wrong, f"float32 model recorded other dtypes: {dict(list(wrong.items())[:5])}"
