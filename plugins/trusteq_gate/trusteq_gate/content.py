"""The digest of a model version's files: what binds a verdict to the model that was judged.

.. math::

    D = \\mathrm{SHA256}\\Big(\\textstyle\\sum_{f\\ \\mathrm{sorted}}
        \\mathrm{path}_f \\,\\|\\, 0 \\,\\|\\, \\mathrm{size}_f \\,\\|\\, 0 \\,\\|\\,
        \\mathrm{SHA256}(f) \\,\\|\\, \\mathtt{\\\\n}\\Big)

over every file under the version's storage location but the ``registered_model_meta`` that
MLflow writes there when it loads the version (paths relative to it, POSIX separators, sorted),
written ``sha256-tree-v1:<hex>``.  The evaluator computes it when it evaluates a version and signs
it into the verdict (``trusteq.content_digest``); the gate recomputes it at every promotion and
refuses when the files changed.  Both sides read the files through MLflow's artifact
repositories: a local store is hashed in place, a remote one (S3, GCS, ...) is downloaded to a
temporary directory first.  Cost: one full read of the model per promotion (see the plugin
README for the measured rate).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

__all__ = ["DIGEST_SCHEME", "tree_digest", "artifact_digest", "server_version_digest", "client_version_digest"]

DIGEST_SCHEME = "sha256-tree-v1"
_CHUNK = 1 << 20
#: written into a model folder by MLflow itself whenever ``models:/name/version`` is loaded from a
#: local store (``ModelsArtifactRepository.download_artifacts``): not part of the model, so not hashed
_MLFLOW_WRITES_ON_LOAD = frozenset({"registered_model_meta"})


def tree_digest(path: str | os.PathLike[str]) -> str:
    """``sha256-tree-v1:<hex>`` of every file under ``path`` (or of the single file ``path``).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist or holds no file (nothing to bind a verdict to).
    """
    root = Path(path)
    if root.is_file():
        files = [(root.name, root)]
    elif root.is_dir():
        files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*")
                       if p.is_file() and p.relative_to(root).as_posix() not in _MLFLOW_WRITES_ON_LOAD)
    else:
        raise FileNotFoundError(f"no model files at {str(root)!r}")
    if not files:
        raise FileNotFoundError(f"no model files under {str(root)!r}")
    outer = hashlib.sha256()
    for rel, p in files:
        inner = hashlib.sha256()
        size = 0
        with open(p, "rb") as f:
            while chunk := f.read(_CHUNK):
                inner.update(chunk)
                size += len(chunk)
        outer.update(f"{rel}\0{size}\0{inner.hexdigest()}\n".encode())
    return f"{DIGEST_SCHEME}:{outer.hexdigest()}"


def _local_path(uri: str) -> str | None:
    from mlflow.utils.file_utils import local_file_uri_to_path
    from mlflow.utils.uri import is_local_uri

    if is_local_uri(uri, is_tracking_or_registry_uri=False):
        return local_file_uri_to_path(uri)
    return None


def artifact_digest(uri: str, *, tracking_uri: str | None = None) -> str:
    """The digest of the files at an artifact URI: in place when local, else after a download."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    local = _local_path(uri)
    if local is not None:
        return tree_digest(local)
    repo = get_artifact_repository(uri, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="trusteq-digest-") as tmp:
        return tree_digest(repo.download_artifacts("", tmp))


def _logged_model_id(uri: str) -> str | None:
    from mlflow.store.artifact.utils.models import _parse_model_uri

    return _parse_model_uri(uri).model_id


def server_version_digest(store: Any, name: str, version: str) -> str:
    """On the tracking server: the digest of the files ``models:/name/version`` serves now.

    ``runs:/`` and logged-model (``models:/m-...``) locations are resolved through the server's
    own tracking store, ``mlflow-artifacts:/`` through its artifact destination.
    """
    from mlflow.server.handlers import _get_artifact_repo_mlflow_artifacts, _get_tracking_store
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    uri = store.get_model_version_download_uri(name, str(version))
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme == "runs":
        run_id, path = RunsArtifactRepository.parse_runs_uri(uri)
        base = _get_tracking_store().get_run(run_id).info.artifact_uri
        uri = posixpath.join(base, path) if path else base
    elif scheme == "models" and (model_id := _logged_model_id(uri)) is not None:
        uri = _get_tracking_store().get_logged_model(model_id).artifact_location
    if urllib.parse.urlparse(uri).scheme == "mlflow-artifacts":
        repo = _get_artifact_repo_mlflow_artifacts()
        rel = urllib.parse.urlparse(uri).path.lstrip("/")
        if isinstance(repo, LocalArtifactRepository):
            return tree_digest(os.path.join(repo.artifact_dir, rel))
        with tempfile.TemporaryDirectory(prefix="trusteq-digest-") as tmp:
            return tree_digest(repo.download_artifacts(rel, tmp))
    return artifact_digest(uri)


def client_version_digest(client: Any, name: str, version: str) -> str:
    """Through an ``MlflowClient``: the digest of the files ``models:/name/version`` serves now."""
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    tracking_uri = client._tracking_client.tracking_uri
    uri = client.get_model_version_download_uri(name, str(version))
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme == "runs":
        uri = RunsArtifactRepository.get_underlying_uri(uri, tracking_uri)
    elif scheme == "models" and (model_id := _logged_model_id(uri)) is not None:
        uri = client.get_logged_model(model_id).artifact_location
    return artifact_digest(uri, tracking_uri=tracking_uri)
