"""--expect update (retrained weights): goldens for the candidate and the audio checks decide;
drift against the approved checkpoint is reported, never a reason."""

from __future__ import annotations

import tomllib

import pytest

from harness.audio.check import THRESHOLDS_FILE

AUDIO_FRAMES = 512  # 32768 samples: the shortest clip the audio checks take


def test_update_with_goldens_but_failing_audio_rejects(approved, gate):
    """The seeded tiny model has goldens, but its random-weight decoder leaves DC and combs
    at its own stride periods: the real audio thresholds reject it, by name."""
    r = gate(approved, None, "update", frames=AUDIO_FRAMES)
    assert r.verdict == "reject"
    assert r.stage("parity").status == "pass"
    assert all(x.startswith("audio: clip ") for x in r.reasons), r.reasons
    assert any("dc_offset" in x for x in r.reasons)


def test_update_reports_drift_without_failing_on_it(approved, seed1, gate):
    r = gate(seed1, approved, "update", parity=False)
    assert r.stage("drift").status == "info" and not r.stage("drift").required
    assert r.stage("weights").status == "info" and r.stage("weights").reasons == []
    rows = r.stage("drift").rows
    assert rows and all(row["min_snr_db"] is None for row in rows)
    assert min(row["snr_db"] for row in rows if row["stage"] == "dit") < 10  # reported
    assert not any(x.startswith(("drift:", "weights:")) for x in r.reasons), r.reasons
    assert any("--no-parity" in n for n in r.notes)


@pytest.fixture
def tiny_audio_thresholds(tmp_path):
    """The audio thresholds, with the three checks the tiny synthetic decoder fails (see the
    test above) loosened past its measured values (dc 0.033, combs -6 dB): a gate-logic
    test of the accept path, not a claim about the audio."""
    table = tomllib.loads(THRESHOLDS_FILE.read_text())
    table["dc_offset"]["max"] = 0.1
    table["comb_1378hz_db"]["max"] = 0.0
    table["comb_5512hz_db"]["max"] = 0.0
    path = tmp_path / "tiny-thresholds.toml"
    path.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {v!r}\n" for k, v in e.items()
                                                    if k in ("min", "max"))
                            for name, e in table.items()))
    return path


def test_update_accepts_when_goldens_and_audio_pass(approved, gate, tiny_audio_thresholds):
    r = gate(approved, None, "update", frames=AUDIO_FRAMES,
             audio_thresholds=tiny_audio_thresholds)
    assert r.verdict == "accept", r.reasons
    assert [s.name for s in r.stages if s.status == "pass"] == ["structure", "load", "parity",
                                                                 "audio"]
    assert r.stage("audio").rows and all(row["passed"] for row in r.stage("audio").rows)


def test_update_audio_too_short_rejects(approved, gate):
    r = gate(approved, None, "update", frames=64, parity=False)
    assert r.verdict == "reject"
    assert any("audio checks need >= 32768" in x for x in r.reasons), r.reasons
