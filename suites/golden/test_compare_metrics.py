"""Edge cases of the per-tensor metrics and of the tolerance test built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.compare.metrics import measure
from harness.golden.tolerances import POLICIES, Tolerance, policy_for
from harness.errors import BadInput


def test_snr_and_cosine_of_a_known_error():
    r = np.array([3.0, 4.0], np.float32)
    m = measure(r + np.array([0.03, 0.0], np.float32), r)
    assert m.snr_db == pytest.approx(10 * math.log10(25 / 0.03 ** 2), abs=1e-3)
    assert m.max_abs == pytest.approx(0.03, rel=1e-5)
    assert m.max_rel == pytest.approx(0.03 / 4, rel=1e-5)
    assert m.cosine < 1.0


def test_exact_zero_and_nan():
    z = np.zeros((2, 3), np.float32)
    assert measure(z, z).snr_db == math.inf and measure(z, z).cosine == 1.0
    assert measure(z + 1, z).snr_db == -math.inf and measure(z + 1, z).cosine == 0.0
    bad = measure(np.full((2, 3), np.nan, np.float32), z + 1)
    tol = Tolerance(10.0, 20.0)
    assert not tol.accepts(bad) and "non-finite" in tol.why_not(bad)


def test_a_scale_error_fails_snr_even_though_the_cosine_is_perfect():
    r = np.linspace(-1, 1, 100)
    m = measure(1.01 * r, r)  # 1 % gain error: 40 dB
    assert m.cosine == pytest.approx(1.0, abs=1e-12)
    assert m.snr_db == pytest.approx(40.0, abs=1e-6)
    tol = Tolerance(75.0, 86.0)
    assert not tol.accepts(m) and tol.why_not(m) == "SNR 40.0 dB < 75 dB"


def test_every_policy_floor_sits_at_least_10_db_under_its_measurement():
    for policy in POLICIES.values():
        for group, tol in policy.groups.items():
            assert tol.margin_db >= 10.0, (policy.label, group)
            assert 0 < 1 - tol.cosine <= 0.5 * 10 ** (-tol.snr_db / 10) + 1e-15


def test_unknown_pair_is_bad_input():
    with pytest.raises(BadInput, match="no tolerance policy for arm-tflite goldens"):
        policy_for("arm-tflite", "fp16")
