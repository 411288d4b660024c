"""``python -m mlflow_trusteq.cli``: the ``trusteq`` command."""

from . import cli

cli()
