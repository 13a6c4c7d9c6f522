"""Every check on every variant of real clips: clean, the benign variants and each fault at its
nominal depth, each checked against the clean clip. The audio suites prove the thresholds with
it (test clips) and tools/calibrate_audio.py sets them with it (calibration clips).

Clips are independent and the metrics are single-threaded numpy/scipy, so clips run in worker
processes, one per core: on 2 cores the 12 test clips take half the wall time.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from harness.audio import check, faults
from harness.host import usable_cores


def variants(x: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """{"clean", "benign:<name>", <fault>: planar audio} for one clip."""
    return {"clean": x, **{f"benign:{k}": f(x, sr) for k, f in faults.BENIGN.items()},
            **{k: faults.apply(k, x, sr) for k in faults.FAULTS}}


def check_variants(x: np.ndarray, sr: int, every_check=True) -> dict[str, check.Report]:
    """{variant: Report} for one clip, every variant against the clean clip analysed once.
    every_check=False: a fault's report holds only the checks meant for it (faults.INTENDED),
    ~1/3 of the work; clean and benign variants always get every check."""
    limits = check.thresholds()
    ref = check.reference_signal(x, sr)
    return {name: check.check_audio(y, sr, reference=ref, limits=limits,
                                    names=None if every_check else faults.INTENDED.get(name))
            for name, y in variants(x, sr).items()}


def _spawnable() -> bool:
    """spawn re-runs the caller's main module in each worker: impossible when it was read from
    stdin or typed (its __file__ is no file)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return main is None or os.path.isfile(main)


def survey(clips, workers: int | None = None,
           every_check=True) -> dict[tuple[str, str], check.Report]:
    """{(clip name, variant): Report} for every clip (corpus.Clip objects); `every_check` as
    in check_variants."""
    workers = min(len(clips), workers or usable_cores()) if _spawnable() else 1
    if workers <= 1:
        per_clip = [check_variants(c.audio, c.sr, every_check) for c in clips]
    else:
        # spawn, not fork: the caller (a pytest session) may hold MLX and BLAS threads
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            per_clip = list(pool.map(check_variants, [c.audio for c in clips],
                                     [c.sr for c in clips], [every_check] * len(clips)))
    return {(c.name, name): report for c, reports in zip(clips, per_clip)
            for name, report in reports.items()}
