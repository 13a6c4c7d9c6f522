#!/usr/bin/env bash
# End-to-end weight gate: the seeded tiny checkpoint against itself and its committed goldens
# (--expect same). Report in $SAO_CI_REPORTS/gate. Extra arguments go to `sao-harness gate`
# (e.g. --device gpu). SAO_CI_FAST=1: short probes (--frames 64: no audio checks).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

tmp=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
sao-harness synth --config tiny --seed 0 --out "$tmp/sao-tiny"
if ci_fast; then set -- --frames 64 ${1+"$@"}; fi
sao-harness gate "$tmp/sao-tiny" --baseline "$tmp/sao-tiny" --expect same \
  --golden-dir golden --report "$SAO_CI_REPORTS/gate" --timeout 1800 ${1+"$@"}
