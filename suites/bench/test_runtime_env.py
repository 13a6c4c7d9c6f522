"""`harness.blas`: the environment MLX gets on Linux CPU (OpenBLAS preload, reused heap)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness import blas

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the preload and glibc heap settings are Linux-only")


def _exports(env: dict) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "harness.blas"], env=env, capture_output=True,
                         text=True, check=True).stdout
    pairs = [line.removeprefix("export ").split("=", 1) for line in out.splitlines()]
    return dict(pairs)


def _bare_env() -> dict:
    drop = {"LD_PRELOAD", "OPENBLAS_CORETYPE", *blas.MALLOC_ENV}
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_exports_set_the_heap_and_the_preload():
    got = _exports(_bare_env())
    assert got["MALLOC_MMAP_MAX_"] == "0" and int(got["MALLOC_TRIM_THRESHOLD_"]) >= 1 << 40
    if blas.openblas_path():
        assert got["LD_PRELOAD"].split(":")[0] == blas.openblas_path()


def test_exports_keep_what_the_user_set_and_are_idempotent():
    env = dict(_bare_env(), MALLOC_TRIM_THRESHOLD_="123")
    first = _exports(env)
    assert "MALLOC_TRIM_THRESHOLD_" not in first
    assert _exports(dict(env, **first)) == {}  # once applied, nothing more to add


needs_openblas = pytest.mark.skipif(blas.thread_count() is None,
                                    reason="no OpenBLAS in this process (run under harness.blas)")


@needs_openblas
def test_threads_sets_the_count_inside_and_restores_it_after():
    before = blas.thread_count()
    with blas.threads(1):
        assert blas.thread_count() == 1
    assert blas.thread_count() == before
    with pytest.raises(RuntimeError), blas.threads(0):  # at least one thread
        assert blas.thread_count() == 1
        raise RuntimeError("the count comes back on an error too")
    assert blas.thread_count() == before
