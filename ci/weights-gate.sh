#!/usr/bin/env bash
# Pull-request weight gate: every checkpoint changed since $BASE_SHA is judged by
# `sao-harness gate` against the same path in the approved tree ($APPROVED, the base branch
# checked out), --expect $EXPECT (same|update); a new checkpoint (no approved version) is
# judged --expect update. When only goldens changed, the seeded tiny checkpoint is gated
# against them. Each report.md goes to the job summary; reports in $SAO_CI_REPORTS.
# The pathspecs below match the workflow's path filter: weight files under review, not the
# harness's own data (harness/: the bundled tokenizer, device floor tables; suites/: test
# fixtures; golden/benchmarks/: timing baselines).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh
: "${BASE_SHA:?BASE_SHA: the base commit}" "${APPROVED:?APPROVED: the base tree}"
EXPECT=${EXPECT:-same}
tmp=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
mkdir -p "$SAO_CI_REPORTS"

# A changed model.safetensors or t5/ file names its checkpoint directory (when it holds
# model_config.json); any other weight file is gated as a file.
git diff --name-only --diff-filter=AMR "$BASE_SHA" HEAD -- \
    "*.safetensors" "*model_config.json" "*/t5/config.json" "*spiece.model" \
    ":(exclude)golden/**" ":(exclude)harness/**" ":(exclude)suites/**" |
  while read -r f; do
    d=$(dirname "$f")
    case "$f" in */t5/*) d=$(dirname "$d") ;; esac
    if [ -f "$d/model_config.json" ]; then echo "$d"; else echo "$f"; fi
  done | sort -u > "$tmp/candidates.txt"
echo "candidates (--expect $EXPECT):"
cat "$tmp/candidates.txt"

status=0
n=0
while read -r c; do
  n=$((n + 1))
  out="$SAO_CI_REPORTS/gate-$n"
  if [ -e "$APPROVED/$c" ]; then
    sao-harness gate "$c" --baseline "$APPROVED/$c" --expect "$EXPECT" \
      --report "$out" --timeout 3600 ${1+"$@"} || status=1
  else
    # A new checkpoint has no approved version: goldens and audio checks decide.
    sao-harness gate "$c" --expect update --report "$out" --timeout 3600 ${1+"$@"} || status=1
  fi
  ci_summary_line "# $c"
  if [ -f "$out/summary.md" ]; then ci_summary_file "$out/summary.md"
  else ci_summary_line "gate failed before writing a report (see the log)"; fi
done < "$tmp/candidates.txt"

if [ "$n" -eq 0 ]; then
  # Only goldens changed: the seeded tiny checkpoint they were recorded for must still
  # match them.
  sao-harness synth --config tiny --seed 0 --out "$tmp/sao-tiny"
  sao-harness gate "$tmp/sao-tiny" --baseline "$tmp/sao-tiny" --expect same \
    --golden-dir golden --report "$SAO_CI_REPORTS/gate-goldens" --timeout 3600 ${1+"$@"} || status=1
  if [ -f "$SAO_CI_REPORTS/gate-goldens/summary.md" ]; then
    ci_summary_file "$SAO_CI_REPORTS/gate-goldens/summary.md"
  else
    status=1
  fi
fi
exit "$status"
