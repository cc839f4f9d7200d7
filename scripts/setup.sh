#!/usr/bin/env bash
# Creates .venv and installs axo-helper with everything it trains and tests with.
# torch is pinned to the CPU wheel here; on a GPU machine install the torch build
# for your CUDA first (pip install torch==X --index-url ...), then run this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
TORCH=${AXO_HELPER_TORCH:-torch==2.13.0}
python -c "import torch" 2>/dev/null || python -m pip install -q "$TORCH"
python -m pip install -q -e ".[train,dev]" "$TORCH"
# DeepSpeed builds its ops lazily; it must see the installed torch while installing.
python -c "import deepspeed" 2>/dev/null || python -m pip install -q --no-build-isolation "deepspeed>=0.18,<0.19"
echo "axo-helper installed in .venv (activate with: . .venv/bin/activate)"
