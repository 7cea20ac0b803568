#!/usr/bin/env bash
# GPU figures at ImageNet scale on a machine with a CUDA GPU: selection and the linear head's
# training on a pool of 1,281,167 rows, feature extraction on 400,000 images (the 1.28M time
# projected from the rate). Sized for at most about 8 minutes on one H200 (an estimate until it
# has run there).
# Writes benchmarks/results/gpu.json (after each part). Extra arguments go to benchmarks.gpu, e.g.
#   bash benchmarks/gpu.sh --parts selection --samplers base,margin
# Needs numpy, torch, timm and tqdm (the efficientnet-lite0 weights' package is optional: without
# it the backbone is randomly initialised, which does not change the speed); no dvc, no polars.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'benchmarks/gpu.sh: torch sees no CUDA GPU here')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
PYTHONUNBUFFERED=1 exec "$PYTHON" -m benchmarks.gpu --device cuda "$@"
