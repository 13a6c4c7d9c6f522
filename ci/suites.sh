#!/usr/bin/env bash
# The goldens' hashes, then every test (-m "full or not full" replaces pyproject's default
# deselection, so every marker runs), JUnit XML and human-readable reports in $SAO_CI_REPORTS.
# SAO_CI_FAST=1: the audio suites on the committed corpus only (a smoke run of this script).
# Extra arguments go to pytest (e.g. --device gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

mkdir -p "$SAO_CI_REPORTS/suites"
sao-harness golden verify --golden-dir golden
if ci_fast; then
  set -- suites/audio -k "not_used_for_calibration or loudness_is_pyloudnorm" ${1+"$@"}
else
  set -- suites/ -m "full or not full" ${1+"$@"}
fi
python -m pytest "$@" -p no:cacheprovider --benchmark-disable \
  --junitxml="$SAO_CI_REPORTS/junit-suites.xml" --report-dir="$SAO_CI_REPORTS/suites"
