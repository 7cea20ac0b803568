#!/usr/bin/env bash
# The test suite (what CI runs): set up the environment, then pytest.
set -euo pipefail
cd "$(dirname "$0")"
SKIP_DATASET=1 source scripts/setup.sh
python -m pytest -q "$@"
