"""A device's floor table from its own comparisons with the goldens (`golden calibrate`).

Per tolerance policy (the key a golden resolves to: producer, dtype and, for tiny goldens,
the preset) and tensor group: the worst free-run SNR of MLX on this device against the
reference's goldens, and the floor the CPU floors' rule makes of it (tolerances.floor_for).
The CPU floors also took the worst reference-vs-reference SNR (torch vs LiteRT) into their
minimum; that pair does not depend on the MLX device, so the device's own measurement is
what a device table adds.
"""

from __future__ import annotations

import math

from harness.golden.tolerances import (MARGIN_DB, POLICIES, ROUND_DB, UNCALIBRATED_ALLOWANCE_DB,
                                        floor_for, key_name, policy_key)


def worst_per_group(pairs) -> dict[str, dict[str, dict]]:
    """{policy key name: {group: {worst_snr_db, tensor, case}}} over (golden, CaseResult)."""
    out: dict[str, dict[str, dict]] = {}
    for golden, res in pairs:
        key = key_name(policy_key(res.producer, res.dtype, golden.preset))
        groups = out.setdefault(key, {})
        for row in res.rows:
            snr = row.full.snr_db
            worst = groups.get(row.group)
            if worst is None or not snr >= worst["worst_snr_db"]:  # NaN counts as worst
                groups[row.group] = {"worst_snr_db": snr, "tensor": row.name, "case": res.case}
    return out


def proposed_table(worst: dict[str, dict[str, dict]], device: str, dtype: str,
                   provenance: dict) -> dict:
    """The table `harness/golden/device_floors/<device>.json` holds, with the CPU floor of
    each group beside it for review."""
    policies = {}
    for key, groups in sorted(worst.items()):
        cpu = POLICIES[tuple(key.split("/"))].groups
        policies[key] = {}
        for g, w in sorted(groups.items()):
            snr = w["worst_snr_db"]
            finite = math.isfinite(snr)
            policies[key][g] = {
                "worst_snr_db": round(snr, 2) if finite else str(snr),
                "tensor": w["tensor"], "case": w["case"],
                "floor_db": floor_for(snr) if finite else None,
                "cpu_floor_db": cpu[g].snr_db if g in cpu else None,
                "provisional_floor_db": (cpu[g].snr_db - UNCALIBRATED_ALLOWANCE_DB
                                         if g in cpu else None)}
    return {"device": device, "dtype": dtype,
            "rule": f"floor = worst SNR - >= {MARGIN_DB:g} dB, rounded down to a multiple of "
                    f"{ROUND_DB:g} dB (the CPU floors' rule, harness/golden/tolerances.py)",
            "provenance": provenance, "policies": policies}
