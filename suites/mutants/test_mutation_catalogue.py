"""The mutation catalogue against the harness's checks: every mutant caught, the first
divergence (or the WAV check) naming its module, every audible one also flagged by the audio
checks on the clip it generates; the unmutated model raises no alarm.
Default run: the control plus a subset (one per area) against tiny-torch, and the mutants that
only the euler, CFG and long goldens can see against those; nightly: all of them against
every tiny case."""

from __future__ import annotations

import json

import pytest

from harness.mutants.run import CASE, CASES, CATALOGUE, Bench, run_catalogue

FAST = ["convt-weight-layout", "qk-norm-after-rope", "seconds-not-normalized",
        "pingpong-stale-noise", "interleaved-read-as-planar", "t5-128-tokens",
        "prepended-token-appended", "t5-position-bias-mirrored", "run-returns-channels-swapped"]
# Seen only by one golden case each: euler, CFG (default run), long inputs (RoPE past position
# 33, a decode stitched from chunks: nightly, the long case costs ~10 s a comparison).
PATHS = {"euler-dt-sign": "tiny-torch-euler", "cfg-halves-swapped": "tiny-torch-cfg"}
LONG = {"rope-positions-clamped": "tiny-torch-long", "decode-chunks-no-overlap": "tiny-torch-long"}


@pytest.fixture(scope="module")
def bench(tiny_checkpoint):
    return Bench(tiny_checkpoint, cases=(CASE,))


@pytest.fixture(scope="module")
def bench_paths(tiny_checkpoint):
    return Bench(tiny_checkpoint, cases=(CASE, *PATHS.values()))


@pytest.fixture(scope="module")
def bench_all(tiny_checkpoint):
    return Bench(tiny_checkpoint, cases=CASES)


def _assert_caught_and_localized(outcomes):
    control, *mutants = outcomes
    assert control.name == "unmutated" and not control.caught, control.to_dict()
    assert not control.heard_by, control.to_dict()
    for o in mutants:
        assert o.caught, f"{o.name} survived: {o.golden}"
        assert o.localized, f"{o.name}: localized to {o.localized_to}, expected {o.expected_module}"
        if o.audible:
            assert o.heard, f"{o.name}: audible ({o.symptom}) but no audio check flagged its clip"


def test_catalogue_is_complete():
    assert len(CATALOGUE) >= 44
    text = " ".join(m.symptom for m in CATALOGUE.values())
    for seed_symptom in ("bad phone line", "flickery", "slow motion"):
        assert seed_symptom in text


def test_fast_subset(bench):
    outcomes = run_catalogue(FAST, bench)
    _assert_caught_and_localized(outcomes)
    slow = next(o for o in outcomes if o.name == "interleaved-read-as-planar")
    assert "speed_ratio" in slow.heard_by
    assert "wav:music:speed_ratio" in slow.caught_by or bench.music is None
    flicker = next(o for o in outcomes if o.name == "convt-weight-layout")
    assert flicker.heard and flicker.localized


def test_audio_checks_count_only_what_the_clean_clip_passes(bench):
    # The synthetic tiny decoder's own noise fails DC and the stride combs; those checks
    # must not be what flags a mutant (the control would then be flagged too).
    assert {"dc_offset", "comb_1378hz_db", "comb_5512hz_db"}.isdisjoint(bench.audio_applicable)
    assert {"speed_ratio", "mrstft_distance", "side_correlation", "flicker_db",
            "band_limit_db", "nonfinite_samples"} <= bench.audio_applicable


def test_catalogue_marks_inaudible_mutants_with_a_reason():
    for m in CATALOGUE.values():
        if not m.audible:
            assert "inaudible" in m.symptom or "not audible" in m.symptom, m.name


def _only_their_case(bench, cases: dict[str, str]):
    """Each is invisible to tiny-torch and named exactly, locally, by its own case (the
    unmutated model passes these cases: suites/golden/test_golden_parity)."""
    assert set(bench.goldens) >= {CASE, *cases.values()}
    for o in run_catalogue(list(cases), bench, control=False):
        assert o.verdicts[CASE].startswith("all "), (o.name, o.verdicts[CASE])
        assert o.case == cases[o.name] and o.localized and o.where == "local", o.to_dict()


def test_sampler_paths(bench_paths):
    _only_their_case(bench_paths, PATHS)


@pytest.mark.nightly
def test_long_inputs(bench_all):
    _only_their_case(bench_all, LONG)


@pytest.mark.nightly
def test_whole_catalogue(bench_all):
    outcomes = run_catalogue(None, bench_all)
    _assert_caught_and_localized(outcomes)
    assert all(o.where in ("local", "structural", "wav") for o in outcomes[1:])


def test_cli_json(tmp_path):
    from suites.cli_util import run_cli

    r = run_cli("mutants", "run", "--only", "lr-swapped", "--case", "tiny-torch", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["control"]["caught"] is False
    (m,) = out["mutants"]
    assert m["name"] == "lr-swapped" and m["caught"] and m["localized_to"] == "output.wav"
    assert m["expected_module"] == "output.wav" and "wav:roundtrip" in m["caught_by"]
    assert m["audible"] and m["heard_by"] == ["side_correlation"] and out["unheard"] == []


def test_heard_table_lists_each_mutant_and_its_checks():
    from harness.mutants.run import Outcome, heard_table

    outs = [Outcome("unmutated", "-", "none"),
            Outcome("m", "output.wav", "slow", heard_by=["speed_ratio", "seam_db"],
                    caught_by=["audio:speed_ratio", "wav:music:speed_ratio"])]
    rows = heard_table(outs).splitlines()
    assert rows[2] == "| unmutated | yes | - | - |"
    assert rows[3] == "| m | yes | speed_ratio, seam_db | speed_ratio |"


def test_trained_model_without_its_golden_is_bad_input(tmp_path, monkeypatch):
    """A golden store without the trained model's case: exit 2 naming it, before any mutant
    runs (the committed store has it: suites/mutants/test_trained_heard.py runs it)."""
    from suites.cli_util import assert_no_verdict, assert_one_line_error, run_cli

    monkeypatch.setenv("SAO_GOLDEN_DIR", str(tmp_path))
    r = run_cli("mutants", "run", "--config", "tiny-trained", "--only", "lr-swapped")
    assert_one_line_error(r, str(tmp_path / "tiny-trained-torch"), "golden case missing")
    assert_no_verdict(r.out)
