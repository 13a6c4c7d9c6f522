#!/usr/bin/env bash
# A/B benchmark gate: this checkout's tiny stages against a reference revision's, interleaved
# in one run (`sao-harness bench ab`, golden/benchmarks/README.md; ~1-2 min on 2 cores). Exit
# 1 when a stage is slower by more than its N (15-20%, ab_threshold.json of this machine class).
# The reference: $SAO_CI_AB_REFERENCE if set; else with $SAO_CI_AB_SINCE (the nightly: "24
# hours ago") the last commit before then, so a night's run covers the day's changes; else the
# merge-base with main when HEAD is off main, else HEAD's parent. Skipped with a message (exit
# 0) when the clone's history lacks that revision (a shallow clone), when HEAD is that revision
# (nothing to compare), or when this machine class has no ab_threshold.json: the stored-baseline
# gate (`bench compare`, ci/bench.sh) still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

skip() {
  echo "A/B benchmark gate skipped: $*; the stored-baseline gate (bench compare) still runs"
  ci_summary_line "A/B benchmark gate skipped: $*"
}

ref=${SAO_CI_AB_REFERENCE:-}
if [ -z "$ref" ] && [ -n "${SAO_CI_AB_SINCE:-}" ]; then
  ref=$(git rev-list -1 --before="$SAO_CI_AB_SINCE" HEAD 2> /dev/null || true)
  [ -n "$ref" ] || { skip "no commit before $SAO_CI_AB_SINCE in this clone's history (shallow clone? fetch-depth: 0)"; exit 0; }
elif [ -z "$ref" ]; then
  ref=HEAD~1
  for main in origin/main main; do
    base=$(git merge-base HEAD "$main" 2> /dev/null || true)
    if [ -n "$base" ] && [ "$base" != "$(git rev-parse HEAD)" ]; then ref=$base; break; fi
  done
fi
if ! sha=$(git rev-parse --verify --quiet "$ref^{commit}" 2> /dev/null); then
  skip "revision $ref is not in this clone's history (a shallow clone? fetch-depth: 0)"
  exit 0
fi
if [ "$sha" = "$(git rev-parse HEAD)" ]; then
  skip "HEAD is the reference $ref (no change to compare)"
  exit 0
fi
cls=$(python -m harness.bench.machine)
if [ ! -f "golden/benchmarks/$cls/ab_threshold.json" ]; then
  skip "no golden/benchmarks/$cls/ab_threshold.json (measure it with tools/bench_gate/evidence.py)"
  exit 0
fi
echo "A/B benchmark gate: HEAD against $ref ($sha)"
sao-harness bench ab --reference "$sha"
