#!/usr/bin/env bash
# The test suite (what CI runs): set up the environment, then pytest.
set -euo pipefail
cd "$(dirname "$0")"
SKIP_DATASET=1 source scripts/setup.sh
# Headless Chromium for the report's screenshot test (tests/test_report.py); skipped without it.
if ! command -v chromium >/dev/null && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "test: installing Debian package chromium (headless check of reports/compare/index.html)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || echo "test: could not install chromium; the screenshot test will be skipped" >&2
fi
# Label Studio (its own environment) for the real-server tests of tests/test_label_studio.py: the
# suite fails without it (AL_SKIP_LABEL_STUDIO=1 skips them on purpose, saying so).
if [ "${AL_SKIP_LABEL_STUDIO:-0}" = "1" ]; then
    echo "test: AL_SKIP_LABEL_STUDIO=1: tests/test_label_studio.py (the real Label Studio server) will be skipped" >&2
else
    bash scripts/install_label_studio.sh || { echo "test: could not install Label Studio into .venv-ls (see above); the real-server tests cannot run (AL_SKIP_LABEL_STUDIO=1 skips them)" >&2; exit 1; }
    export AL_REQUIRE_LABEL_STUDIO=1
fi
# The documentation site: reference pages generated from the code, every link and anchor checked.
echo "test: building the documentation (mkdocs build --strict)"
NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
python -m pytest -q "$@"
