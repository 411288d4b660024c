#!/usr/bin/env bash
# The test command: sets up .venv (or $VENV) with the test extras if needed, then runs the whole suite,
# slow real-model tests included. Extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/setup-env.sh "${VENV:-.venv}" test
exec python -m pytest -q "$@"
