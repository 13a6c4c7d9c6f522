"""The A/B benchmark gate (harness/bench/ab.py): its reference build, its injected slowdown,
its thresholds; and (nightly) one real session that passes the unmodified checkout and
catches a 30% slowdown. The 10-run evidence is tools/bench_gate/evidence.py (numbers in
golden/benchmarks/README.md).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest

from harness.bench import ab
from harness.bench.ab_worker import _spin
from harness.bench.baseline import Missing
from harness.errors import BadInput


def test_reference_tree_is_that_revision():
    show = subprocess.run(["git", "-C", str(ab.REPO), "show", "HEAD:harness/bench/plan.py"],
                          capture_output=True, text=True)
    if show.returncode:
        pytest.skip("not a git checkout")
    with ab.reference_tree("HEAD") as tree:
        assert (tree / "harness" / "bench" / "plan.py").read_text() == show.stdout
        assert (tree / "harness" / "__init__.py").is_file()


def test_unknown_revision_is_bad_input():
    with pytest.raises(BadInput, match="no-such-revision"):
        with ab.reference_tree("no-such-revision"):
            pass


def test_injected_slowdown_burns_cpu():
    t0 = time.process_time()
    _spin(0.05)
    assert time.process_time() - t0 >= 0.05


def test_threshold_floor_and_margin():
    assert ab.tier(0.0) == ab.FLOOR_PERCENT == 15
    assert ab.tier(0.08) == 20    # 2 x 8% = 16% -> next tier
    assert ab.pairs_for(1e-4) == ab.PAIRS_MAX and ab.pairs_for(100.0) == ab.PAIRS_MIN
    assert ab.PAIRS_MIN >= 25     # 9 pairs of the 1 s generate once read 30% as 17%


class Recorder:
    """A worker whose every round takes `cpu` seconds; it logs which worker ran when."""

    def __init__(self, name: str, cpu: float, log: list):
        self.name, self.cpu, self.log = name, cpu, log

    def time(self, stage: str) -> float:
        self.log.append(self.name)
        return self.cpu


@pytest.mark.parametrize("n_candidates", [1, 2])
def test_rounds_alternate_fairly(n_candidates):
    """Each worker runs first in a pair as often as the others, and gets as many back-to-back
    rounds (warm caches): with three workers, plain ABC CBA gave the middle one none."""
    log: list[str] = []
    ref = Recorder("ref", 1.0, log)
    cands = {f"c{k}": Recorder(f"c{k}", 1.3 + k, log) for k in range(n_candidates)}
    res = ab.run_ab(ref, cands, stages=("generate",))["generate"]
    assert all(res.median(f"c{k}") == pytest.approx(1.3 + k) for k in range(n_candidates))
    workers = n_candidates + 1
    timed = log[workers:]                       # one warm-up round each: rounds of 1 s
    assert len(timed) == ab.PAIRS_MIN * workers
    period = 2 * workers                        # pairs after which the rotation repeats
    whole = timed[:(ab.PAIRS_MIN // period) * period * workers]
    firsts = Counter(whole[::workers])
    repeats = Counter(a for a, b in zip(whole, whole[1:]) if a == b)
    names = ["ref", *cands]
    assert len({firsts[n] for n in names}) == 1 and len({repeats[n] for n in names}) == 1


def test_missing_thresholds_are_bad_input(tmp_path, monkeypatch):
    monkeypatch.setattr(ab, "class_dir", lambda cls=None: tmp_path)
    with pytest.raises(Missing, match="ab_threshold.json"):
        ab.thresholds()


@pytest.mark.nightly
def test_session_passes_clean_and_catches_30_percent():
    from harness.weights.synth import default_checkpoint

    stages = ("t5", "vae_decode_short")
    with ab.reference_tree("HEAD") as ref:
        rec = ab.session(ab.REPO, ref, default_checkpoint("tiny"), stages,
                         {"clean": {}, "slow": {s: 0.3 for s in stages}})
    for s in stages:
        clean, slow = rec["median_ratio"]["clean"][s], rec["median_ratio"]["slow"][s]
        assert clean - 1 <= ab.FLOOR_PERCENT / 100 < slow - 1, (s, rec)
