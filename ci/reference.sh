#!/usr/bin/env bash
# The reference suite in its own virtualenv (official PyTorch code + LiteRT): recorders load
# strictly, re-recording reproduces the goldens, torch vs LiteRT agreement.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

venv=${SAO_REFERENCE_VENV:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/sao-refvenv}
bash harness/reference/install_env.sh "$venv"
mkdir -p "$SAO_CI_REPORTS"
# Without the OpenBLAS preload: it would replace torch's own sgemm (Linux only; a no-op on macOS).
env -u LD_PRELOAD -u OPENBLAS_CORETYPE "$venv/bin/python" -m pytest suites/reference \
  suites/weights/test_tflite_extract.py -m reference -p no:cacheprovider \
  --junitxml="$SAO_CI_REPORTS/junit-reference.xml"
