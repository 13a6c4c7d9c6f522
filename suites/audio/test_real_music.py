"""The audio checks on real music: no false alarms on clean clips, every port fault flagged by
the metric meant for it, thresholds held on clips they were not tuned on.

Thresholds were set from corpus.CALIBRATION (tools/calibrate_audio.py); these tests use only
corpus.TEST. The margins, and under the `full` marker a confusion table (fault x metric), go to
SAO_REPORT_DIR (or a pytest temporary directory).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.audio import check, corpus, faults, metrics

# faults.INTENDED: fault -> the checks meant to catch it (each must fire on every test clip)
INTENDED = faults.INTENDED
CLEAN_VARIANTS = ["clean", *(f"benign:{k}" for k in faults.BENIGN)]


def _clip_names(reports):
    return sorted({c for c, _ in reports})


def test_every_fault_has_an_intended_metric():
    assert set(INTENDED) == set(faults.FAULTS)
    names = set(check.FREE) | set(check.RELATIVE)
    assert {m for ms in INTENDED.values() for m in ms} <= names


def test_test_clips_were_not_used_for_calibration(test_clips):
    for source in corpus.TEST:
        assert not set(corpus.TEST[source]) & set(corpus.CALIBRATION.get(source, []))
    sources = {c.name.split("/")[0] for c in test_clips}
    assert len(test_clips) >= 8 and len(sources) >= 2
    for c in test_clips:
        assert c.audio.shape[0] == 2 and c.audio.dtype == np.float32 and c.sr == 44100


@pytest.mark.parametrize("variant", CLEAN_VARIANTS)
def test_clean_music_raises_no_alarm(reports, variant):
    alarms = [f"{clip}: {c}" for clip in _clip_names(reports)
              for c in reports[clip, variant].checks if not c.passed]
    assert not alarms, "\n".join(alarms)


@pytest.mark.parametrize("fault", sorted(INTENDED))
def test_fault_is_flagged_by_its_metric(reports, fault):
    missed = [f"{clip}: {c}" for clip in _clip_names(reports) for name in INTENDED[fault]
              if (c := reports[clip, fault][name]).passed]
    assert not missed, f"{fault} not flagged:\n" + "\n".join(missed)


def test_natural_21hz_pulse_is_not_flicker(reports, test_clips):
    """noiz2sa stg0 pulses at ~20 Hz (a tracker tempo): strong modulation 1.5 Hz from the
    latent frame rate must not raise the flicker alarm."""
    clip = next(c for c in test_clips if c.name == "noiz2sa/stg0")
    near = metrics.modulation_prominence(clip.audio, clip.sr, rate_hz=20.0, harmonics=1)[0]
    assert 10 * math.log10(near) > check.thresholds()["flicker_db"]["max"]  # the pulse is there
    assert reports[clip.name, "clean"]["flicker_db"].passed


def _margin(value, bounds):
    """Signed distance inside the bounds (negative = outside), in the metric's units."""
    return min(value - bounds.get("min", -math.inf), bounds.get("max", math.inf) - value)


def margins(reports):
    """Per intended metric: the clean value nearest the threshold and the intended-fault value
    nearest it, with their distances to the threshold."""
    limits = check.thresholds()
    rows = {}
    for fault, names in INTENDED.items():
        for name in names:
            row = rows.setdefault(name, {"threshold": limits[name], "clean": None, "fault": None})
            for clip in _clip_names(reports):
                for variant in CLEAN_VARIANTS:
                    v = reports[clip, variant][name].value
                    m = _margin(v, limits[name])
                    if row["clean"] is None or m < row["clean"][0]:
                        row["clean"] = (m, v, f"{clip} {variant}")
                v = reports[clip, fault][name].value
                m = -_margin(v, limits[name])
                if row["fault"] is None or m < row["fault"][0]:
                    row["fault"] = (m, v, f"{clip} {fault}")
    return rows


def test_margins_written(reports, report_dir):
    """The margins need only the intended checks (the default suite's survey)."""
    rows = margins(reports)
    (report_dir / "audio_margins.json").write_text(json.dumps(
        {k: {"threshold": r["threshold"], "clean": r["clean"], "fault": r["fault"]}
         for k, r in rows.items()}, indent=1))
    assert set(rows) == {m for ms in INTENDED.values() for m in ms}
    assert all(r["clean"][0] >= 0 and r["fault"][0] > 0 for r in rows.values())


def test_fault_reports_hold_only_their_intended_checks(reports, test_clips):
    clip = test_clips[0].name
    for fault, names in INTENDED.items():
        assert [c.name for c in reports[clip, fault].checks] == [
            n for n in [*check.FREE, *check.RELATIVE] if n in names]
    assert len(reports[clip, "clean"].checks) == len(check.FREE) + len(check.RELATIVE)


@pytest.mark.full
def test_confusion_table_and_margins_written(all_reports, report_dir):
    """Every check on every fault (off-diagonal cells: what else a fault trips)."""
    reports = all_reports
    clips = _clip_names(reports)
    metric_names = list(check.FREE) + list(check.RELATIVE)
    variants = CLEAN_VARIANTS + sorted(faults.FAULTS)
    # cell = how many test clips the metric flags for that fault
    table = {v: {m: sum(not reports[c, v][m].passed for c in clips) for m in metric_names}
             for v in variants}
    lines = [f"# Audio checks: confusion table ({len(clips)} test clips; cell = clips flagged, "
             "* = intended metric)", "", "| variant | " + " | ".join(metric_names) + " |",
             "|---" * (len(metric_names) + 1) + "|"]
    for v in variants:
        cells = [f"{table[v][m]}{'*' if m in INTENDED.get(v, []) else ''}" for m in metric_names]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines += ["", "## Margins (metric units; clean = inside threshold, fault = beyond it)", "",
              "| metric | threshold | worst clean value | margin | weakest fault value | margin |",
              "|---|---|---|---|---|---|"]
    rows = margins(reports)
    for name, r in rows.items():
        (cm, cv, cw), (fm, fv, fw) = r["clean"], r["fault"]
        lines.append(f"| {name} | {r['threshold']} | {cv:.4g} ({cw}) | {cm:.3g} | "
                     f"{fv:.4g} ({fw}) | {fm:.3g} |")
    (report_dir / "audio_confusion.md").write_text("\n".join(lines) + "\n")
    (report_dir / "audio_confusion.json").write_text(json.dumps(
        {"clips": clips, "table": table,
         "margins": {k: {"threshold": r["threshold"], "clean": r["clean"], "fault": r["fault"]}
                     for k, r in rows.items()}}, indent=1))
    assert all(table[v][m] == 0 for v in CLEAN_VARIANTS for m in metric_names)
    assert all(table[f][m] == len(clips) for f, ms in INTENDED.items() for m in ms)
    assert all(r["clean"][0] >= 0 and r["fault"][0] > 0 for r in rows.values())
