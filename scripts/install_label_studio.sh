#!/usr/bin/env bash
# Label Studio 1.23.2 in its own virtual environment, .venv-ls (its Django dependencies must not
# meet DVC's): the server of the annotation loop's walkthrough and of tests/test_label_studio.py.
# About 2 minutes and 1 GB the first time; a no-op afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-ls/bin/label-studio ]; then
    echo "install_label_studio: installing Label Studio 1.23.2 into .venv-ls (~2 min and ~1 GB the first time)"
    "${PYTHON:-python3}" -m venv .venv-ls
    .venv-ls/bin/python -m pip install --quiet --upgrade pip
    .venv-ls/bin/python -m pip install --quiet "label-studio==1.23.2"
fi
