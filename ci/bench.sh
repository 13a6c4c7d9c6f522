#!/usr/bin/env bash
# Benchmarks: the A/B gate against a reference revision (ci/bench-ab.sh; the nightly's is
# the last commit before $SAO_CI_AB_SINCE), then against golden/benchmarks/<machine class>/.
# A class with a baseline and its threshold.json is compared (exit 1 on a regression). A
# class without them is bootstrapped: the baseline is recorded and the run-to-run noise
# measured (threshold.json), both copied to $SAO_CI_REPORTS/benchmarks/<class>/ (the artifact)
# with a warning; commit that directory to golden/benchmarks/ and the next run compares.
# Presets: $SAO_CI_BENCH_PRESETS (default tiny).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

cls=$(python -m harness.bench.machine)
dir="golden/benchmarks/$cls"
status=0
bash ci/bench-ab.sh || status=1
for preset in ${SAO_CI_BENCH_PRESETS:-tiny}; do
  if [ -f "$dir/$preset.json" ] && [ -f "$dir/threshold.json" ]; then
    sao-harness bench compare --config "$preset" || status=1
    continue
  fi
  ci_warn "no $preset benchmark baseline or threshold.json for machine class $cls: bootstrapping (artifact benchmarks/$cls/; commit it to golden/benchmarks/$cls/)"
  [ -f "$dir/$preset.json" ] || sao-harness bench record --config "$preset"
  if [ ! -f "$dir/threshold.json" ]; then
    sao-harness bench noise --config "$preset" --runs "$SAO_CI_BENCH_NOISE_RUNS" --write
  fi
  mkdir -p "$SAO_CI_REPORTS/benchmarks/$cls"
  cp "$dir/$preset.json" "$dir/threshold.json" "$SAO_CI_REPORTS/benchmarks/$cls/"
  ci_summary_line "Benchmarks: machine class \`$cls\` bootstrapped ($preset); commit the artifact's benchmarks/$cls/ to golden/benchmarks/$cls/."
done
exit "$status"
