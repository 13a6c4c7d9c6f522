"""The shipped third-party ports (mlx-audiogen, diffusers from PyPI, the `ports` extra) run for
real through `port check`: each stage's verdict is pinned to what was measured (README
"Shipped ports: findings"), so a change in a port or in the harness shows as a failure here.

A port's known defect is asserted as a `fail` at the named module; an uncovered stage as
`not covered` with its reason. Tiny-size checks run by default; the full-size ones (the only
size mlx-audiogen loads) under `full`. Without the extra these skip locally, naming it, and
fail in CI (which installs it).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from harness.ports.check import FAIL, NOT_COVERED, PASS, check_port
from harness.ports.runner import BrokenAdapter

EXTRA = 'the `ports` extra (pip install -e ".[ports]")'


def needs(package: str) -> None:
    """Skip locally, fail in CI (which installs the extra): never a silent skip there."""
    if importlib.util.find_spec(package) is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"missing: {package} is not installed: {EXTRA}")


def verdicts(report) -> dict[str, str]:
    return {s.name: s.verdict for s in report.stages}


# -- diffusers: every part it has loads at any size --------------------------------------------

def test_diffusers_tiny(tiny_checkpoint, golden_dir):
    needs("diffusers")
    r = check_port("diffusers", tiny_checkpoint, golden_dir)
    assert r.case == "tiny-torch"
    assert verdicts(r) == {"converted_weights": PASS, "text_encoder": PASS, "conditioner": PASS,
                           "dit": NOT_COVERED, "sampler": NOT_COVERED, "decode": PASS,
                           "audio": NOT_COVERED}, r.to_dict()
    # the decoder is compared layer by layer (22 module outputs + the audio)
    assert len(r.stage("decode").rows) == 22
    assert "dit_forward" in r.stage("dit").detail
    assert r.passed


# -- mlx-audiogen: full size only ----------------------------------------------------------------

def test_mlx_audiogen_refuses_tiny(tiny_checkpoint, golden_dir):
    """Its converter writes a hard-coded full-size config (5 VAE blocks, T5-base, 768-wide
    seconds embedder): the tiny synth's 3-block VAE does not load. A broken adapter, exit 2."""
    needs("mlx_audiogen")
    with pytest.raises(BrokenAdapter, match=r"stage load: .*not in model: "
                                            r"decoder\.layers\.layers\.4\.alpha"):
        check_port("mlx-audiogen", tiny_checkpoint, golden_dir)


@pytest.mark.full
def test_diffusers_full(full_checkpoint, golden_dir):
    """At the real size its decoder matches the official one (same torch ops, same 1e-9 snake
    term), on the 32-frame decode of `full-torch-short`."""
    needs("diffusers")
    stages = ("converted_weights", "text_encoder", "conditioner", "decode")
    r = check_port("diffusers", full_checkpoint, golden_dir, case="full-torch-short",
                   stages=stages)
    assert verdicts(r) == dict.fromkeys(stages, PASS), r.to_dict()


@pytest.mark.full
def test_mlx_audiogen_full(full_checkpoint, golden_dir, monkeypatch):
    """Measured defects, each at its module: the converter's VAE conv weights (saved as
    non-contiguous transposes, which safetensors 0.8.0 writes as raw memory: SNR -3 dB) and so
    the decode; the seconds_total embedder ([cos, sin, t] of the raw seconds instead of
    [t, sin, cos] of the clamped, normalized ones). T5 and the DiT pass (its 1e-6 block LayerNorm
    eps, official 1e-5, stays above 100 dB here); it has no pingpong sampler."""
    needs("mlx_audiogen")
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "65536")  # its converter's buffers go back to the OS
    stages = ("converted_weights", "text_encoder", "conditioner", "dit", "sampler", "decode")
    r = check_port("mlx-audiogen", full_checkpoint, golden_dir, case="full-torch-short",
                   stages=stages)
    assert verdicts(r) == {"converted_weights": FAIL, "text_encoder": PASS, "conditioner": FAIL,
                           "dit": PASS, "sampler": NOT_COVERED, "decode": FAIL}, r.to_dict()
    w = r.stage("converted_weights")
    assert w.first_divergence == "pretransform.model.decoder.layers.0.weight" and w.snr_db < 0
    c = r.stage("conditioner")
    assert c.first_divergence == "conditioner.cross_attn_cond" and c.snr_db < 20
    glob = next(t for t in c.rows if t.name == "conditioner.global_cond")
    assert glob.metrics.snr_db < 0
    assert "pingpong" in r.stage("sampler").detail
    d = r.stage("decode")
    assert d.first_divergence == "pretransform.model.decoder" and d.snr_db < 0
