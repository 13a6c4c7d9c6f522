#!/usr/bin/env bash
# Build the reference virtualenv (official stable-audio-tools 0.0.19 + LiteRT) used only to
# record goldens. Usage: install_env.sh VENV_DIR. Idempotent: a stamp holding this script's
# hash makes a second run a no-op. The harness's own runtime venv never needs any of this.
set -euo pipefail

VENV=${1:?usage: install_env.sh VENV_DIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-python3}
STAMP="$VENV/.sao-reference-stamp"
# The stamp names this script's content and the tree installed editable (-e) into the venv.
# (sha256sum on Linux, shasum on macOS, which has no sha256sum)
if command -v sha256sum > /dev/null; then HASH=(sha256sum); else HASH=(shasum -a 256); fi
WANT="$("${HASH[@]}" "${BASH_SOURCE[0]}" | cut -d' ' -f1) $REPO"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "reference env $VENV is up to date"
  exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet)

# Every pip call gets the torch pin, or a dependency pulls a multi-GB CUDA build.
CONS="$VENV/reference-constraints.txt"
echo "torch==2.13.0" > "$CONS"

"${PIP[@]}" -c "$CONS" "torch==2.13.0"
# The official model code without its training/dataset dependency tree.
"${PIP[@]}" -c "$CONS" --no-deps stable-audio-tools==0.0.19 alias-free-torch==0.0.6 einops-exts==0.0.4
"${PIP[@]}" -c "$CONS" einops safetensors huggingface_hub transformers==5.24.0 numpy packaging \
  tqdm sentencepiece pytest pytest-benchmark hypothesis "mlx[cpu]>=0.29"
"${PIP[@]}" -c "$CONS" litert-torch==0.10.0
# The harness itself (for harness.reference), without its audio/runtime dependencies. mlx is
# above only because harness.weights.synth derives checkpoint key names from the MLX model tree;
# nothing recorded is computed by MLX.
"${PIP[@]}" -c "$CONS" --no-deps -e "$REPO"

# Our stand-ins for torchaudio and k_diffusion (imported by the package, unused at inference).
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$HERE/stubs" > "$SITE/sao_reference_stubs.pth"

"$VENV/bin/python" - <<'PY'
import torch, stable_audio_tools, litert_torch, ai_edge_litert, harness.reference  # noqa: F401
from stable_audio_tools.models.factory import create_model_from_config  # noqa: F401
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert not torch.cuda.is_available()
PY
echo "$WANT" > "$STAMP"
echo "reference env ready: $VENV"
