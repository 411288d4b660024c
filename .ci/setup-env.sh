#!/usr/bin/env bash
# Create (or reuse) a virtual environment with everything mlflow-trusteq needs.
# Usage: source .ci/setup-env.sh [VENV_DIR] [EXTRAS]   (defaults: .venv, all)
# Idempotent: reinstalls only when pyproject.toml or the gate plugin's metadata changed.
set -euo pipefail
_venv="${1:-.venv}"
_extras="${2:-all}"
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_py="$(command -v python3.11 || command -v python3)"
if [ ! -x "$_venv/bin/python" ]; then
  "$_py" -m venv "$_venv"
fi
_stamp="$_venv/.trusteq-$_extras-$(cat "$_root/pyproject.toml" "$_root/plugins/trusteq_gate/pyproject.toml" 2>/dev/null | sha256sum | cut -c1-16)"
if [ ! -f "$_stamp" ]; then
  "$_venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  # the CPU wheel of torch first: a bare `torch` requirement may pull a multi-GB CUDA build
  "$_venv/bin/python" -m pip install -q --disable-pip-version-check torch==2.13.0
  # the main distribution ships the gate package too (pyproject.toml's package-dir), so no separate install of it;
  # an older setup's editable trusteq-gate would own the same files and entry points: remove it
  if "$_venv/bin/python" -m pip show -q trusteq-gate >/dev/null 2>&1; then
    "$_venv/bin/python" -m pip uninstall -q -y trusteq-gate
  fi
  "$_venv/bin/python" -m pip install -q --disable-pip-version-check -e "$_root[$_extras]"
  touch "$_stamp"
fi
export PATH="$(cd "$_venv" && pwd)/bin:$PATH"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
