"""The version of mlflow-trusteq: its one source (``pyproject.toml`` reads it; ``mlflow_trusteq.__version__``)."""

__version__ = "0.1.0"
