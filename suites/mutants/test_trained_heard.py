"""The catalogue on the trained tiny model (nightly: ~N min): its clips are music-like, so the
absolute audio checks (flicker at the latent rate, band limit, stride combs, seams) hold on the
unmutated clip and can hear mutants on their own; the seed's symptoms are heard through the
model. The heard-by table before/after is tools/train_tiny/README.md."""

from __future__ import annotations

import pytest

from harness.mutants.run import Bench, run_catalogue

ABSOLUTE = {"flicker_db", "band_limit_db", "seam_db", "comb_21hz_db", "comb_172hz_db"}
# mutant -> an audio check that must hear it on the trained model's clip
HEARD = {
    "decode-chunks-no-overlap": "seam_db",     # inaudible on synthetic weights
}


@pytest.fixture(scope="module")
def bench():
    return Bench(model="tiny-trained")


@pytest.mark.nightly
def test_trained_clip_passes_the_absolute_checks(bench):
    assert ABSOLUTE <= bench.audio_applicable, sorted(ABSOLUTE - bench.audio_applicable)


@pytest.mark.nightly
def test_trained_model_hears_the_seed_symptoms(bench):
    control, *mutants = run_catalogue(None, bench)
    assert not control.caught, control.to_dict()
    by = {o.name: o for o in mutants}
    for name, check in HEARD.items():
        assert check in by[name].heard_by, by[name].to_dict()


def test_before_after_table_puts_absolute_checks_first_in_bold():
    from harness.mutants.run import Outcome, heard_before_after

    def run(heard):
        return [Outcome("unmutated", "-", "none").to_dict(),
                Outcome("m", "x", "s", heard_by=heard, localized_to="x", where="local",
                        case="c", caught_by=["golden"] + [f"audio:{h}" for h in heard]).to_dict()]

    rows = heard_before_after(run([]), run(["seam_db", "mrstft_distance"])).splitlines()
    assert rows[2] == "| unmutated | - | - | - | - |"
    assert rows[3] == "| m | x (local, c) | - | x (local, c) | **seam_db**, mrstft_distance |"


def test_before_file_that_is_not_a_run_is_bad_input(tmp_path):
    from suites.cli_util import assert_one_line_error, run_cli

    bad = tmp_path / "before.json"
    bad.write_text('{"mutants": 3}')
    r = run_cli("mutants", "run", "--only", "lr-swapped", "--case", "tiny-torch", "--before",
                str(bad))
    assert r.code == 2
    assert_one_line_error(r, "before.json")
