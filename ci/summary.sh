#!/usr/bin/env bash
# The gate's summary.md (report.md with its plots inlined as data URIs) as the job summary.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

report="$SAO_CI_REPORTS/gate/summary.md"
if [ -f "$report" ]; then
  ci_summary_file "$report"
  echo "job summary: $report"
else
  ci_summary_line "no gate report was written (see the log)"
  echo "no gate report at $report"
fi
