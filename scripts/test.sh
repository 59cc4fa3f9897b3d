#!/usr/bin/env bash
# Install buildbot-jira with its test dependencies into .venv and run every check:
# ruff, mypy and the whole test suite. The README's test command; CI runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

echo "== ruff"
.venv/bin/ruff check buildbot_jira tests scripts benchmarks
echo "== mypy"
.venv/bin/mypy buildbot_jira benchmarks
echo "== pytest"
.venv/bin/python -m pytest tests "$@"
