#!/usr/bin/env bash
# Install what the tests need on a fresh Debian machine and run lint, type check and tests.
# This is the README's test command; .ci/run calls it with CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in tshark tcpdump chromium; do command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool"); done
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "test.sh: ${need_apt[*]} missing and not root: tests needing them will be skipped" >&2
    fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
echo "== mypy"
python3 -m mypy
echo "== pytest"
python3 -m pytest -q "$@"
