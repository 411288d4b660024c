"""The plugin's own tests (``pip install './plugins/trusteq_gate[test]'``; no torch, no mlflow-trusteq)."""

from gate_helpers import uvicorn_server  # noqa: F401  (a session fixture)
