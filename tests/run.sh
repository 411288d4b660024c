#!/usr/bin/env bash
# The test command. From a fresh clone it sets up everything its tests need, then checks and tests:
#   1. system packages: Debian's chromium, wordnet-base, a Java 17 runtime (.ci/system-deps.sh; as root, when missing)
#   2. .venv (or $VENV) with the test extras (.ci/setup-env.sh; reinstalls only when pyproject.toml changed)
#   3. ruff check, then mypy (configured in pyproject.toml), then the whole pytest suite, slow tests included.
# Extra arguments go to pytest (e.g. -m "not slow", or a path). Under CI=true (or TRUSTEQ_STRICT_DEPS=1) a test
# skipped for a missing dependency fails the run (tests/_strict_deps.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/system-deps.sh
source .ci/setup-env.sh "${VENV:-.venv}" test
echo "tests/run.sh: ruff check" >&2
python -m ruff check .
echo "tests/run.sh: mypy" >&2
python -m mypy
exec python -m pytest -q "$@"
