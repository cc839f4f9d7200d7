#!/usr/bin/env bash
# Python 3.12 environments in which Axolotl 0.21 / 0.20 import on a CPU machine, to
# generate their schemas and to run the differential tests against them:
#
#   bash scripts/schema_envs/setup.sh [PREFIX]        # default /tmp/axo-schema
#   PREFIX-0.21/bin/python scripts/generate_axolotl_schema.py
#   PYTHONPATH=. PREFIX-0.21/bin/python -m pytest tests/validate/test_validate_differential.py
#
# Axolotl 0.20+ needs Python >= 3.12, and its schema imports torch (enums.py uses
# torch dtypes as values). PyPI's only torch for cp312 x86_64 is a CUDA build: it
# imports on a CPU once its nvidia-* libraries are installed (~3 GB download, ~6 GB
# on disk). PREFIX-0.20 installs only the pins that differ and borrows the rest of
# PREFIX-0.21 through a .pth file (~1.7 GB). About 3 minutes with a fast mirror.
set -euo pipefail
P=${1:-/tmp/axo-schema}
PY=${PYTHON312:-$HOME/.pyenv/versions/3.12.1/bin/python}
HERE=$(cd "$(dirname "$0")" && pwd)
TEST_DEPS="pytest hypothesis jsonschema click jinja2 rich platformdirs pyyaml nvidia-ml-py"
"$PY" -m venv "$P-0.21"
"$P-0.21/bin/pip" install -q --upgrade pip
"$P-0.21/bin/pip" install -q torch==2.14.1
"$P-0.21/bin/pip" install -q --no-deps -r "$HERE/axolotl-0.21.txt"
"$P-0.21/bin/pip" install -q $TEST_DEPS
"$PY" -m venv "$P-0.20"
"$P-0.20/bin/pip" install -q --upgrade pip
"$P-0.20/bin/pip" install -q --no-deps torch==2.14.0 -r "$HERE/axolotl-0.20.txt"
echo "$P-0.21/lib/python3.12/site-packages" > "$P-0.20/lib/python3.12/site-packages/zz-shared-0.21.pth"
for v in 0.21 0.20; do
  "$P-$v/bin/python" -c "import axolotl, torch; from axolotl.utils.schemas.config import AxolotlInputConfig; print('axolotl', axolotl.__version__, 'torch', torch.__version__, len(AxolotlInputConfig.model_fields), 'fields')"
done
