#!/usr/bin/env bash
# Label Studio 1.23.2 in its own virtual environment, .venv-ls (its Django dependencies must not
# meet DVC's): the server of the annotation loop's walkthrough and of tests/test_label_studio.py.
# Every package at the version of constraints/label-studio.txt: Label Studio does not cap its own
# dependencies, and a new major release of one (sentry-sdk 3.0) stops its server from starting.
# About 2 minutes and 1 GB the first time; a no-op afterwards, until the constraints file changes.
set -euo pipefail
cd "$(dirname "$0")/.."
STAMP=.venv-ls/.installed
if [ ! -x .venv-ls/bin/label-studio ] || [ ! -f "$STAMP" ] || [ constraints/label-studio.txt -nt "$STAMP" ]; then
    echo "install_label_studio: installing Label Studio 1.23.2 into .venv-ls (~2 min and ~1 GB the first time)"
    [ -x .venv-ls/bin/python ] || "${PYTHON:-python3}" -m venv .venv-ls
    .venv-ls/bin/python -m pip install --quiet --upgrade pip
    .venv-ls/bin/python -m pip install --quiet -c constraints/label-studio.txt "label-studio==1.23.2"
    touch "$STAMP"
fi
