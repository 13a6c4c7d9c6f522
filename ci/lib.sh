# shellcheck shell=bash
# Helpers for the CI scripts (sourced). Bash 3.2 (macOS /bin/bash) and GNU/BSD tools alike:
# no sha256sum, readlink -f, sed -i or GNU-only flags.
# shellcheck source=ci/config.sh
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"

ci_fast() { [ "${SAO_CI_FAST:-0}" = "1" ]; }

# Portable sha256 of a file.
ci_sha256() {
  if command -v sha256sum > /dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# GitHub annotations when on Actions, plain lines elsewhere.
ci_warn() { echo "::warning::$*"; }
ci_error() { echo "::error::$*" >&2; }

# Append a file (or a line) to the job summary; a no-op outside GitHub Actions.
ci_summary_file() {
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$1" >> "$GITHUB_STEP_SUMMARY"; fi
}
ci_summary_line() {
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then echo "$*" >> "$GITHUB_STEP_SUMMARY"; fi
}
