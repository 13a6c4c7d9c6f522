#!/usr/bin/env bash
# The nightly's steps in order, as the workflow runs them (for a local run or a test):
# memory check, suites, benchmarks, gate, summary. Stops at the first failing step.
# SAO_CI_FAST=1 runs the smoke variant of each step (and skips the benchmarks unless
# SAO_CI_BENCH=1).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

bash ci/check-memory.sh
bash ci/suites.sh
if ! ci_fast || [ "${SAO_CI_BENCH:-0}" = "1" ]; then bash ci/bench.sh; fi
bash ci/gate.sh
bash ci/summary.sh
