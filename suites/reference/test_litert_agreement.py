"""torch vs LiteRT on the tiny preset, per tensor, fp32 (numbers: notes/reference-findings.md).

Tolerance: both sides are fp32 runs of the same graph with different kernels (oneDNN/ATen vs
TFLite reference or XNNPACK), so they may differ by accumulated rounding only: per tensor
SNR >= 80 dB (relative RMS error 1e-4) and cosine >= 1 - 1e-7. Measured minimum on tiny is
~97 dB (VAE decoder end), so a real port bug (>= 1e-3 relative) cannot hide under it.
"""

from __future__ import annotations

import numpy as np
import pytest

from suites.reference.needs import require_torch, small_inputs


require_torch()
pytest.importorskip("litert_torch", reason="needs litert-torch in the reference venv")
pytestmark = pytest.mark.reference

import torch  # noqa: E402

from harness.reference import litert  # noqa: E402
from harness.reference.record_torch import record  # noqa: E402
from harness.reference.tflite import Pipeline, run_pipeline  # noqa: E402

MIN_SNR_DB = 80.0
MIN_COSINE = 1 - 1e-7
STEPS = 4


def agreement(ref: np.ndarray, got: np.ndarray) -> tuple[float, float, float]:
    r, g = ref.astype(np.float64), got.astype(np.float64)
    err = ((r - g) ** 2).sum()
    snr = np.inf if err == 0 else 10 * np.log10((r ** 2).sum() / err)
    cos = (r * g).sum() / np.sqrt((r ** 2).sum() * (g ** 2).sum()) if (r ** 2).sum() else 1.0
    return float(np.abs(r - g).max()), float(cos), float(snr)


def check(name, ref, got):
    assert ref.shape == got.shape, f"{name}: shape {got.shape} != {ref.shape}"
    if ref.dtype.kind != "f":
        assert np.array_equal(ref, got), name
        return
    maxabs, cos, snr = agreement(ref, got)
    assert snr >= MIN_SNR_DB and cos >= MIN_COSINE, \
        f"{name}: snr {snr:.1f} dB (min {MIN_SNR_DB}), cosine {cos:.9f}, max abs {maxabs:.3g}"


@pytest.fixture(scope="module")
def recordings(tiny_reference, tmp_path_factory):
    model, ckpt = tiny_reference
    inputs = small_inputs(ckpt)
    ref = record(model, inputs, steps=STEPS)
    workdir = tmp_path_factory.mktemp("tflite")
    got = litert.record(model, inputs, ref, workdir, steps=STEPS, sampler="pingpong",
                        max_length=64)
    return inputs, ref, got, workdir


def test_every_intermediate_found_and_agrees(recordings):
    _, ref, got, _ = recordings
    missing = [n for n in ref if litert.observable(n) and n not in got]
    assert not missing, f"LiteRT recording lacks {missing}"
    for name in got:
        check(name, ref[name], got[name])


class NewerOrder(torch.nn.Module):
    """Arm's newer DiT input order (t, global, cross, x), exported with anonymous names."""

    def __init__(self, dit):
        super().__init__()
        self.dit = dit

    def forward(self, t, global_cond, cross_attn_cond, x):
        return self.dit(x, t, cross_attn_cond, global_cond)


def test_arm_style_run_of_the_files(tiny_reference, recordings, tmp_path):
    """The three files run as a user's Arm directory would (default XNNPACK kernels, inputs
    bound by name and shape); a DiT exported with Arm's newer input order and anonymous names
    (args_0..3) gives the same boundaries."""
    import litert_torch

    model, _ = tiny_reference
    inputs, ref, _, workdir = recordings
    boundaries = run_pipeline(Pipeline.from_dir(workdir), inputs, steps=STEPS, sampler="pingpong")
    for name, value in boundaries.items():
        check(name, ref[name], value)

    kw = litert.sample_kwargs(model, inputs.noise.shape[-1], 64)["dit"]
    path = tmp_path / "dit_model.tflite"
    with torch.no_grad():
        module = NewerOrder(litert.wrappers(model, 64)["dit"]).eval()
        args = (kw["t"], kw["global_cond"], kw["cross_attn_cond"], kw["x"])
        litert_torch.convert(module, args).export(str(path))
    files = {"conditioners": workdir / "conditioners_float32.tflite", "dit": path,
             "autoencoder": workdir / "autoencoder_model.tflite"}
    pipe = Pipeline(files)
    assert [d["name"] for d in pipe.models["dit"].inputs()] == \
        [f"serving_default_args_{i}" for i in range(4)]
    for name, value in run_pipeline(pipe, inputs, steps=STEPS, sampler="pingpong").items():
        np.testing.assert_allclose(value, boundaries[name], rtol=0, atol=1e-5, err_msg=name)


def test_arm_producer_writes_a_verified_golden(recordings, tmp_path):
    """`golden record --producer arm-tflite` on a three-file directory (ours, same layout)."""
    from harness.golden.store import load_golden
    from harness.reference.record import main

    inputs, ref, _, workdir = recordings
    code = main(["--producer", "arm-tflite", "--arm-dir", str(workdir), "--case", "arm",
                 "--golden-dir", str(tmp_path), "--steps", str(STEPS), "--lengths", "3,64",
                 "--seconds", "2.5,300", "--vocab-size", "1024"])
    assert code == 0
    g = load_golden("arm", tmp_path)
    assert g.manifest["producer"] == "arm-tflite" and g.manifest["settings"]["frames"] == 16
    np.testing.assert_array_equal(g["input.noise"], inputs.noise)  # same seeded inputs
    for name, value in g.tensors.items():
        check(name, ref[name], value)
