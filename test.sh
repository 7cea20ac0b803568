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
# Label Studio (its own environment) for the real-server round trip of tests/test_label_studio.py,
# which is skipped, saying why, when it cannot be installed.
bash scripts/install_label_studio.sh || echo "test: could not install Label Studio; tests/test_label_studio.py will be skipped" >&2
# The documentation site: reference pages generated from the code, every link and anchor checked.
echo "test: building the documentation (mkdocs build --strict)"
NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
python -m pytest -q "$@"
