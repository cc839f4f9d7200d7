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
# llama.cpp's GGUF converter for `export --gguf`'s tests, from the llama-cpp-python sdist
# (it vendors llama.cpp): fetched once into .cache/llama-cpp/, only the converter and
# gguf-py unpacked. Without PyPI setup goes on; the GGUF tests then fail under CI.
LLAMA_CPP_PYTHON=$(python -c "from axo_helper.export.llama_cpp import LLAMA_CPP_PYTHON as v; print(v)")
SDIST=llama_cpp_python-$LLAMA_CPP_PYTHON
LLAMA_CACHE=.cache/llama-cpp
if [ ! -f "$LLAMA_CACHE/$SDIST/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
  mkdir -p "$LLAMA_CACHE"
  if python -m pip download -q --no-binary :all: --no-deps -d "$LLAMA_CACHE" \
       "llama-cpp-python==$LLAMA_CPP_PYTHON" 2>"$LLAMA_CACHE/download.log" \
     && tar -xzf "$LLAMA_CACHE/$SDIST.tar.gz" -C "$LLAMA_CACHE" \
       "$SDIST/vendor/llama.cpp/convert_hf_to_gguf.py" "$SDIST/vendor/llama.cpp/conversion" \
       "$SDIST/vendor/llama.cpp/gguf-py" "$SDIST/vendor/llama.cpp/LICENSE"; then
    rm -f "$LLAMA_CACHE/$SDIST.tar.gz" "$LLAMA_CACHE/download.log"
  else
    echo "warning: could not fetch llama-cpp-python==$LLAMA_CPP_PYTHON (see $LLAMA_CACHE/download.log);" \
      "the GGUF export tests need it" >&2
  fi
fi
echo "axo-helper installed in .venv (activate with: . .venv/bin/activate)"
