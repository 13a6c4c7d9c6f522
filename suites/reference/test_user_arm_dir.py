"""A user's real Arm TFLite directory (`pytest --tflite-dir DIR`): record its boundaries."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.reference


def test_record_user_arm_dir(tflite_dir, tmp_path):
    if tflite_dir is None:
        pytest.skip("missing: --tflite-dir DIR with Arm's conditioners_float32.tflite, "
                    "dit_model.tflite and autoencoder_model.tflite")
    pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (reference venv)")
    from harness.golden.store import load_golden
    from harness.reference.record import main

    assert main(["--producer", "arm-tflite", "--arm-dir", str(tflite_dir), "--case", "arm",
                 "--golden-dir", str(tmp_path), "--lengths", "12", "--seconds", "11"]) == 0
    g = load_golden("arm", tmp_path)
    audio = g["pretransform.model.decoder"]
    assert audio.shape[:2] == (1, 2) and np.isfinite(audio).all()
    assert np.abs(audio).max() > 0
