"""This repository's pytest setup: the sao-harness plugin (options and the seeded checkpoint
fixtures: harness/pytest_plugin.py), hypothesis profiles, the opt-in markers.

Without options every suite runs on seeded synthetic checkpoints (tiny by default;
full-size ones under the `full` marker). `--weights`, `--golden-dir` and `--tflite-dir`
point the suites at a user's real files instead.
"""

from __future__ import annotations

import re

import pytest

from harness.settings import hypothesis_profile

# Options (--weights, --golden-dir, --tflite-dir, --report-dir, --port) and the fixtures built
# on them live in the installed plugin, so a port's own repository gets them too. The entry
# point bears the module's name: when it is loaded already this line is a no-op.
pytest_plugins = ["harness.pytest_plugin"]

try:  # the reference virtualenv runs only `-m reference` suites and has no hypothesis
    from hypothesis import HealthCheck, settings
except ImportError:
    settings = None

if settings is not None:
    # `ci` is derandomized and bounded; `nightly` explores far more. Neither keeps an example
    # database, so a stored failure from another run can never make this run flaky.
    for _name, _random, _n in (("ci", True, 40), ("nightly", False, 1000)):
        settings.register_profile(_name, derandomize=_random, database=None, max_examples=_n,
                                  deadline=None, print_blob=True,
                                  suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(hypothesis_profile())


# Opt-in markers: a test carrying one runs only when the -m expression names it (`-m full`,
# `-m "bench and full"`, `-m "full or nightly"`), so markers compose: `-m bench` selects the
# tiny benchmarks only. (A `-m "not full ..."` in addopts would be replaced by any -m given.)
OPT_IN = ("full", "nightly", "reference")


def pytest_collection_modifyitems(config, items):
    named = set(re.findall(r"\w+", config.getoption("markexpr") or ""))
    keep, drop = [], []
    for item in items:
        opted_out = any(m not in named and item.get_closest_marker(m) for m in OPT_IN)
        (drop if opted_out else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
