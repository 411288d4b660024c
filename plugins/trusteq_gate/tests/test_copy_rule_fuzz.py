"""The gate's "is this a copy of models:/NAME/N?" against what MLflow's own handler records.

MLflow's ``model-versions/create`` handler runs in this process (its Flask app, a sqlite store,
no gate installed) and is the reference: for each source spelling, the version it records is a
copy of ``models:/NAME/N`` exactly when its recorded source is ``models:/NAME/N``.  The gate's
:func:`trusteq_gate.app.copy_origin`, fed the same parsed request, must say the same thing:
a copy, of the same version, or not a copy (or MLflow's own refusal of the source).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAMES = ["src", "Src", "src2"]  # src/1, src/2 (alias champion, stage Production), Src/1 (another model)


@pytest.fixture(scope="module")
def mlflow_app(tmp_path_factory):
    """MLflow's own server app in this process, on a fresh sqlite store (no gate)."""
    from mlflow.server import handlers
    from mlflow.server.constants import ARTIFACT_ROOT_ENV_VAR, BACKEND_STORE_URI_ENV_VAR
    from mlflow.tracking._model_registry import utils as registry_utils

    root = tmp_path_factory.mktemp("fuzz")
    mp = pytest.MonkeyPatch()
    mp.setenv(BACKEND_STORE_URI_ENV_VAR, f"sqlite:///{root / 'mlflow.db'}")
    mp.setenv(ARTIFACT_ROOT_ENV_VAR, str(root / "artifacts"))
    mp.setattr(handlers, "_model_registry_store", None)
    mp.setattr(handlers, "_tracking_store", None)
    previous_registry = registry_utils._registry_uri
    from mlflow.server import app

    c = app.test_client()

    def post(path, body):
        r = c.post("/api/2.0/mlflow" + path, data=json.dumps(body), content_type="application/json")
        return r.status_code, r.get_json()

    for name in ("src", "Src", "dst"):
        assert post("/registered-models/create", {"name": name})[0] == 200
    for name, n in (("src", 2), ("Src", 1)):
        for i in range(n):
            assert post("/model-versions/create", {"name": name, "source": f"s3://bucket/{name}/{i}"})[0] == 200
    assert post("/registered-models/alias", {"name": "src", "alias": "champion", "version": "2"})[0] == 200
    assert post("/model-versions/transition-stage", {"name": "src", "version": "2", "stage": "Production",
                                                     "archive_existing_versions": False})[0] == 200
    with app.test_request_context():
        yield app, post
    registry_utils._registry_uri = previous_registry
    mp.undo()


def gate_says(app, source: str):
    """copy_origin on the request MLflow's parser makes of this body: ('copy', name, version), 'no', or 'invalid'."""
    from mlflow.exceptions import MlflowException

    from trusteq_gate.app import copy_origin

    with app.test_request_context("/api/2.0/mlflow/model-versions/create", method="POST",
                                  data=json.dumps({"name": "dst", "source": source}), content_type="application/json"):
        from mlflow.protos.model_registry_pb2 import CreateModelVersion
        from mlflow.server.handlers import _get_request_message

        msg = _get_request_message(CreateModelVersion())
        try:
            origin = copy_origin(msg)
        except MlflowException:
            return "invalid"
    return "no" if origin is None else ("copy", origin[0], origin[1])


def mlflow_says(post, source: str):
    """What MLflow's handler records: ('copy', name, version) for a models:/NAME/N source, 'no', or 'invalid'."""
    status, body = post("/model-versions/create", {"name": "dst", "source": source})
    if status != 200:
        return "invalid"
    recorded = body["model_version"]["source"]
    if recorded.startswith("models:/") and not recorded.startswith("models:/m-"):
        name, _, version = recorded[len("models:/"):].rpartition("/")
        return ("copy", name, version)
    return "no"


TABLE = [
    "models:/src/1", "models:/src/2", "models:/Src/1", "models:/src/latest", "models:/src@champion",
    "models:/src/Production", "models:/src/01", " models:/src/1", "\x00models:/src/1", "\x7fmodels:/src/1",
    "mod\tels:/src/1", "mo\r\ndels:/src/1", "MODELS:/src/1", "models:/src/1\t", "models:/src/1 ", "models:src/1",
    "models:///src/1", "models://src/1", "models:/src//1", "models:/src/1/", "models:/src/1?x=1", "models:/src/1#f",
    "models%3A/src/1", "models:/%73rc/1", "models:/src/%31", "models:/src2/1", "runs:/abc/model",
    "s3://bucket/models:/src/1", "file:///tmp/models:/src/1", "models:/m-abc", "models :/src/1", "models:/src/１",
    "models:/src/" + "1" * 20, "\u200bmodels:/src/1", "models:/SRC/1", "models:/src/ 1",
]


@pytest.mark.parametrize("source", TABLE)
def test_table_of_spellings(mlflow_app, source):
    app, post = mlflow_app
    gate = gate_says(app, source)
    ref = mlflow_says(post, source)
    if ref != "invalid":  # where MLflow refuses the source, nothing is recorded whatever the gate says
        assert gate == ref, (source, gate, ref)


_pad = st.text(alphabet=st.sampled_from([" ", "\t", "\n", "\r", "\x00", "\x01", "\x1f", "\x7f", "\u200b"]),
               max_size=3)
_scheme = st.builds(lambda s, cut, ins: s[:cut] + ins + s[cut:], st.sampled_from(["models", "MODELS", "Models",
                                                                                 "mOdElS", "model", "runs"]),
                    st.integers(0, 6), st.sampled_from(["", "\t", "\n", "\r", " ", "\x00"]))
_sep = st.sampled_from([":/", "://", ":///", ":", ":\t/", "%3A/"])
_name = st.sampled_from(NAMES + ["src ", "%73rc", "SRC"])
_ref = st.sampled_from(["/1", "/2", "/01", "/latest", "@champion", "/Production", "/Staging", "/1/", "//1", "/1 ",
                        "/" + "9" * 20, "/3"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pre=_pad, scheme=_scheme, sep=_sep, name=_name, ref=_ref, post_=_pad)
def test_generated_spellings(mlflow_app, pre, scheme, sep, name, ref, post_):
    app, post = mlflow_app
    source = pre + scheme + sep + name + ref + post_
    gate = gate_says(app, source)
    ref_ = mlflow_says(post, source)
    if ref_ != "invalid":
        assert gate == ref_, (source, gate, ref_)
