"""scikit-learn estimators and pipelines -> :class:`~mlflow_trusteq.adapters.ProbaModel`."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import InvalidInputError, ModelAdapterError
from ._base import BaseAdapter, normalise_tabular_records

logger = logging.getLogger(__name__)

__all__ = ["SklearnAdapter", "is_sklearn_estimator"]


class _ByteCounter:
    """A write-only file that only counts bytes: pickle size without holding the pickle."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, b: bytes) -> int:
        self.n += len(b)
        return len(b)


def _pickle_size(obj: Any) -> int | None:
    counter = _ByteCounter()
    try:
        pickle.dump(obj, counter, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - size is best effort
        logger.debug("could not pickle %r to estimate its size: %s", type(obj).__name__, exc)
        return None
    return counter.n


def is_sklearn_estimator(obj: Any) -> bool:
    """True for a scikit-learn estimator (or Pipeline): has ``fit`` and ``get_params``."""
    return hasattr(obj, "fit") and hasattr(obj, "get_params") and (
        hasattr(obj, "predict_proba") or hasattr(obj, "decision_function") or hasattr(obj, "predict"))


def _is_text_pipeline(est: Any) -> bool:
    """A pipeline whose first step is a text vectoriser (has ``build_analyzer``) takes raw strings."""
    first = est.steps[0][1] if hasattr(est, "steps") else est
    return hasattr(first, "build_analyzer")


class SklearnAdapter(BaseAdapter):
    r"""A fitted scikit-learn classifier or Pipeline as a :class:`ProbaModel`.

    ``predict_proba`` is used when the estimator has it. An estimator with only
    ``decision_function`` is turned into probabilities with a soft-max over its scores
    (a logistic sigmoid :math:`\sigma(z) = 1/(1+e^{-z})` for a binary 1-D score), with a logged
    warning: those are not calibrated probabilities, so calibration metrics describe the
    soft-max, not the model.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Must expose ``classes_`` (labels are ``str(c)`` for each class).
    labels : sequence of str, optional
        Names to use instead of ``str(classes_)``, in ``classes_`` order (same length): e.g.
        ``["negative", "positive"]`` for classes ``[0, 1]``.
    input_kind : {"auto", "text", "tabular"}
        ``"text"``: records are texts (a one-column DataFrame or a list of strings) handed to the
        estimator as a list of strings. ``"tabular"``: a DataFrame/array passed as is.
        ``"auto"``: text when the first pipeline step is a text vectoriser.
    batch_size : int
        Rows per call.
    name : str, optional
    """

    def __init__(self, estimator: Any, *, labels: Sequence[Any] | None = None, input_kind: str = "auto",
                 batch_size: int = 65536, name: str | None = None) -> None:
        name = name or type(estimator).__name__
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            raise ModelAdapterError(
                f"scikit-learn model {name!r} has no `classes_`: is it a fitted classifier? "
                "(regressors and unfitted estimators cannot give class probabilities)")
        classes = [str(c) for c in np.asarray(classes).tolist()]
        if labels is not None:
            labels = list(labels)
            if len(labels) != len(classes):
                raise ModelAdapterError(
                    f"labels={labels} has {len(labels)} names but model {name!r} has {len(classes)} "
                    f"classes {classes}")
        if hasattr(estimator, "predict_proba"):
            self._method = "predict_proba"
            self.output_kind = "proba"
        elif hasattr(estimator, "decision_function"):
            self._method = "decision_function"
            self.output_kind = "logits"
            logger.warning("model %r has no predict_proba: its decision_function scores are soft-maxed "
                           "(sigmoid for binary); these are not calibrated probabilities", name)
        else:
            raise ModelAdapterError(
                f"scikit-learn model {name!r} has neither predict_proba nor decision_function; "
                "wrap it in sklearn.calibration.CalibratedClassifierCV or use a probabilistic classifier")
        if input_kind not in ("auto", "text", "tabular"):
            raise InvalidInputError(
                f'Expected `input_kind` in ("auto", "text", "tabular"), got {input_kind!r}')
        if input_kind == "auto":
            input_kind = "text" if _is_text_pipeline(estimator) else "tabular"
        self.input_kind = input_kind
        self.estimator = estimator
        super().__init__(labels if labels is not None else classes, name=name,
                         size_bytes=_pickle_size(estimator), batch_size=batch_size)

    def _normalise(self, records: Any) -> Any:
        if self.input_kind == "text":
            return super()._normalise(records)
        return normalise_tabular_records(records, name=self.name)

    def _score_batch(self, batch: Any) -> np.ndarray:
        return np.asarray(getattr(self.estimator, self._method)(batch), dtype=np.float64)
