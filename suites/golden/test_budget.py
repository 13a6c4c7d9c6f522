"""The committed golden store stays small enough to clone: 100 MB. Raised from the ~15 MB of
tiny goldens + full-size boundaries because ports mostly run only at real dimensions, and the
full-size DiT intermediates that localize a port's first diverging layer take 23 MB
(`full-torch-short`, README "Goldens")."""

from harness.golden.store import DEFAULT_ROOT

BUDGET_MB = 100


def test_golden_store_within_budget():
    files = [p for p in DEFAULT_ROOT.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files) / 2**20
    biggest = max(files, key=lambda p: p.stat().st_size)
    assert total <= BUDGET_MB, (f"golden/ holds {total:.1f} MB > {BUDGET_MB} MB "
                                f"(largest: {biggest.relative_to(DEFAULT_ROOT)})")
