#!/usr/bin/env bash
# Sourced by run.sh and test.sh: a virtual environment with the project installed, the
# Fashion-MNIST files when this machine can install them, and a git identity for `dvc exp run`.
set -euo pipefail

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when pyproject.toml or the pinned versions (constraints/dev.txt) changed since the
# last install.
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ] || [ constraints/dev.txt -nt "$VENV/.installed" ]; then
    echo "setup: installing the project and its dependencies into $VENV (first time: several minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -c constraints/dev.txt -e '.[dev]'
    touch "$VENV/.installed"
fi
export PATH="$PWD/$VENV/bin:$PATH"

if [ "${SKIP_DATASET:-0}" != "1" ] && [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian package dataset-fashion-mnist"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
    else
        echo "setup: Fashion-MNIST is not in /usr/share/datasets/fashion-mnist;" \
             "run 'sudo apt-get install dataset-fashion-mnist' (or see docs/how-to/data.md)" >&2
    fi
fi

if [ ! -d .git ]; then
    git init -q && git add -A && git -c user.name=al -c user.email=al@localhost commit -qm "initial"
fi
if [ -z "$(git config user.email || true)" ]; then
    git config user.email "al-pipeline@localhost"
    git config user.name "al-pipeline"
fi
