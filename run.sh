#!/usr/bin/env bash
# The main job: set everything up, run the default experiment with DVC, print the results table.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
started=$(date +%s)
dvc repro
echo
echo "== results (reports/table.md, $(( $(date +%s) - started )) s) =="
cat reports/table.md
