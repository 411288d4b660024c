#!/usr/bin/env bash
# The main job: an end-to-end trust evaluation and gated promotion on SST-2 with MiniLM, offline.
# Sets up .venv (or $VENV) if needed, then runs examples/sst2_trust_demo.py (arguments pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/setup-env.sh "${VENV:-.venv}" all
exec python examples/sst2_trust_demo.py "$@"
