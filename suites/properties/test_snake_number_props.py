"""SnakeBeta (log-scale alpha, beta) and the seconds_total NumberConditioner (clamp, normalize,
[s, sin, cos] features, Linear) against numpy oracles."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import example, given

from harness.model.conditioner import NumberConditioner
from harness.model.layers import SnakeBeta
from suites.properties import mutants, oracles
from suites.properties.checks import EPS32, assert_close, assert_detects
from suites.properties.strategies import NumberCase, SnakeCase, number_cases, snake_cases


def check_snake(cls, case: SnakeCase):
    snake = cls(case.channels)
    snake.load_weights([("alpha", mx.array(case.alpha)), ("beta", mx.array(case.beta))], strict=True)
    y = np.array(snake(mx.array(case.x.transpose(0, 2, 1)))).transpose(0, 2, 1)  # channels-last
    ref = oracles.snake_beta(case.x, case.alpha, case.beta)
    x = case.x.astype(np.float64)
    arg = np.abs(np.exp(case.alpha.astype(np.float64))[None, :, None] * x)
    inv_b = 1 / np.exp(case.beta.astype(np.float64))[None, :, None]
    # exp(alpha)·x rounds by ~2·eps·|arg| rad, so sin² moves by <= 2·that; plus the roundings
    # of 1/exp(beta), the square and the sum.
    tol = 4 * EPS32 * (np.abs(x) + inv_b * (1 + 2 * arg))
    assert_close(f"{case}", y, ref, tol)


SNAKE_EXAMPLES = [SnakeCase(4, 10, seed=0), SnakeCase(1, 3, seed=1), SnakeCase(16, 40, batch=2, seed=2)]


@given(snake_cases())
@example(SNAKE_EXAMPLES[0])
def test_snake_beta(case):
    check_snake(SnakeBeta, case)


def test_snake_catches_linear_scale():
    assert_detects(check_snake, mutants.SnakeLinearScale, [(c,) for c in SNAKE_EXAMPLES])


def check_number(cls, case: NumberCase):
    cond = cls(case.features, case.min_val, case.max_val)
    cond.load_weights([("embedder.embedding.0.weights", mx.array(case.freqs)),
                       ("embedder.embedding.1.weight", mx.array(case.w)),
                       ("embedder.embedding.1.bias", mx.array(case.b))], strict=True)
    y = np.array(cond(mx.array(np.array(case.seconds, np.float32))))
    ref = oracles.number_conditioner(case.seconds, case.min_val, case.max_val, case.freqs, case.w, case.b)
    assert y.shape == (len(case.seconds), 1, case.features), f"{case}: output {y.shape}"
    feats = oracles.number_features(case.seconds, case.min_val, case.max_val, case.freqs)
    s = feats[:, :1]  # normalized seconds
    f = np.abs(s * case.freqs[None, :].astype(np.float64) * 2 * np.pi)  # |angle| per frequency
    # features: s rounds by ~3 eps (clamp, subtract, divide), f = 2π·s·w by ~4·eps·|f| rad;
    # then the Linear's (n+2)·eps·Σ|terms| over n = 257 features.
    feat_err = np.concatenate([3 * EPS32 * s, 4 * EPS32 * (1 + f), 4 * EPS32 * (1 + f)], axis=1)
    w_abs = np.abs(case.w.astype(np.float64))
    tol = (feat_err @ w_abs.T + (case.dim + 3) * EPS32 * (np.abs(feats) @ w_abs.T + np.abs(case.b)))
    assert_close(f"{case}", y, ref, tol[:, None, :])


NUMBER_EXAMPLES = [
    NumberCase((11.0, 300.0), 0.0, 256.0, 8, seed=0),  # the model's range; above max clamps
    NumberCase((-3.0, 0.5, 7.25), 1.5, 48.5, 4, seed=1),  # below min; nonzero min
    NumberCase((10.0,), 10.0, 11.0, 3, seed=2),  # exactly at min
]


@given(number_cases())
@example(NUMBER_EXAMPLES[0])
@example(NUMBER_EXAMPLES[1])
def test_number_conditioner(case):
    check_number(NumberConditioner, case)


@pytest.mark.parametrize("cls", [mutants.NumberUnclamped, mutants.NumberMaxOnly],
                         ids=lambda c: c.__name__)
def test_number_conditioner_catches(cls):
    assert_detects(check_number, cls, [(c,) for c in NUMBER_EXAMPLES])
