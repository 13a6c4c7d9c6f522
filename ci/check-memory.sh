#!/usr/bin/env bash
# Fail early when this runner has less memory than the full-size suites need
# (SAO_CI_FULL_PEAK_RSS_GB + SAO_CI_MEMORY_HEADROOM_GB, ci/config.sh), instead of an OOM kill
# an hour into the run. Exit 0 enough, 1 short.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

python - <<'PY'
import os, sys

peak = float(os.environ["SAO_CI_FULL_PEAK_RSS_GB"])
headroom = float(os.environ["SAO_CI_MEMORY_HEADROOM_GB"])
total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9  # Linux and macOS
override = os.environ.get("SAO_CI_MEMORY_TOTAL_GB")  # tests: pretend a smaller runner
if override:
    total = float(override)
need = peak + headroom
if total < need:
    print(f"::error::runner memory {total:.1f} GB < {need:.1f} GB the full-size suites need "
          f"(peak RSS {peak:g} GB + headroom {headroom:g} GB, ci/config.sh): use a larger "
          "runner (e.g. macos-14-xlarge) or lower SAO_CI_FULL_PEAK_RSS_GB after the memory "
          "work lowers the measured peak", file=sys.stderr)
    sys.exit(1)
print(f"memory: {total:.1f} GB >= {need:.1f} GB needed (peak RSS {peak:g} + headroom {headroom:g})")
PY
