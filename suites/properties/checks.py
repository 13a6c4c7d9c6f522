"""One comparison and one "the property has teeth" helper, used by every property suite."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7: the float32 rounding unit


def assert_close(what: str, actual, expected, tol) -> None:
    """|actual - expected| <= tol elementwise (tol scalar or broadcastable); shapes must match.

    The message names the quantity, the worst element, its error and its tolerance.
    """
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.isfinite(actual).all(), f"{what}: non-finite values"
    tol = np.broadcast_to(np.asarray(tol, np.float64), expected.shape)
    excess = np.abs(actual - expected) - tol
    if excess.size and excess.max() > 0:
        i = np.unravel_index(int(np.argmax(excess)), excess.shape)
        raise AssertionError(
            f"{what}: at {tuple(int(j) for j in i)} got {actual[i]:.9g}, expected "
            f"{expected[i]:.9g} (|err| {abs(actual[i] - expected[i]):.3g} > tol {tol[i]:.3g}; "
            f"{int((excess > 0).sum())}/{excess.size} elements out)")


def assert_detects(check: Callable[..., None], impl, examples: Iterable[tuple]) -> list[str]:
    """The property `check(impl, *ex)` must fail (AssertionError) on at least one example.

    Only AssertionError counts: a wrong implementation that merely crashes the check would
    show the check is broken, not that it detects the bug. Returns the failure messages.
    """
    failures = []
    examples = list(examples)
    for ex in examples:
        try:
            check(impl, *ex)
        except AssertionError as e:
            failures.append(str(e).splitlines()[0] if str(e) else repr(e))
    assert failures, (f"{getattr(check, '__name__', check)} passed all {len(examples)} examples "
                      f"on the wrong implementation {getattr(impl, '__name__', impl)}: vacuous")
    return failures
