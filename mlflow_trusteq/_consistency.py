"""Self-consistency: is each model loyal to itself when only its batching changes?

A model's prediction for a row should not depend on the other rows of its batch. ONNX Runtime's
*dynamic* int8 quantization breaks that: it computes the activation scales per batch tensor,
padding included, so a served model (often one row at a time, or whatever the server's dynamic
batcher assembles) does not behave like the evaluated one. A model that is not loyal to itself
cannot be loyal to its parent.

:func:`measure_self_consistency` scores a random sample of the rows under a second
:class:`~mlflow_trusteq.adapters.BatchPlan` (default: batch size 1) and compares each model with
*itself* as scored in the report (the headline plan), with the loyalty metrics of
:mod:`mlflow_trusteq.metrics`:

.. math::

    \\mathrm{LL}_{\\text{self}} = \\frac1m\\sum_{i \\in S} [\\arg\\max E_i = \\arg\\max R_i], \\qquad
    \\mathrm{PL}_{\\text{self}} = \\frac1m\\sum_{i \\in S} 1 - \\sqrt{\\mathrm{JS}_b(E_i \\| R_i)}

for the sample ``S`` of ``m`` rows, ``E`` the model's probabilities under the headline plan and
``R`` under the other one. Each model's self-loyalty and the paired difference (candidate minus
parent) get percentile-bootstrap intervals over the **same** resampled rows.

Report keys (section ``consistency``, method ``batch``): ``consistency/batch/parent/label_loyalty``,
``.../candidate/...``, ``.../diff/...``, and the same for ``probability_loyalty``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InvalidInputError
from ._types import Estimate, to_jsonable

if TYPE_CHECKING:
    import pandas as pd

    from .adapters import BatchPlan, ProbaModel

__all__ = ["ConsistencyConfig", "ConsistencyResult", "measure_self_consistency", "METHOD", "HEADLINE_PLANS"]

logger = logging.getLogger(__name__)

#: the method segment of the section's keys
METHOD = "batch"
#: what ``TrustEqConfig.headline_plan`` may say: score the report under the models' own plan, or the serving plan
HEADLINE_PLANS = ("evaluation", "serving")
_METRICS = ("label_loyalty", "probability_loyalty")
_ROLES = ("parent", "candidate")


@dataclass(frozen=True)
class ConsistencyConfig:
    """Options of the self-consistency stage.

    Parameters
    ----------
    n_samples : int, default 256
        Rows scored under the second plan (all rows when the data has fewer; the report records both).
    random_state : int, optional
        Seed of the sample; default: the report's ``random_state``.
    max_rows : int, default 200
        Most flipped rows kept in the result (each model's flips; the counts are always complete).
    """

    n_samples: int = 256
    random_state: int | None = None
    max_rows: int = 200

    def __post_init__(self) -> None:
        for key in ("n_samples", "max_rows"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"consistency: `{key}` must be a positive integer, got {value!r}")
        rs = self.random_state
        if rs is not None and (isinstance(rs, bool) or not isinstance(rs, int)):
            raise InvalidInputError(f"consistency: `random_state` must be an integer or None, got {rs!r}")

    @classmethod
    def from_value(cls, value: Any) -> ConsistencyConfig | None:
        """``True``/``"auto"``: the defaults; a mapping of fields; a config; ``False``/``None``: off."""
        if value is None or value is False:
            return None
        if value is True or value == "auto":
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            known = {"n_samples", "random_state", "max_rows"}
            unknown = sorted(set(value) - known)
            if unknown:
                raise InvalidInputError(f"unknown consistency key(s) {unknown}; known: {sorted(known)}")
            return cls(**dict(value))
        raise InvalidInputError(f"`consistency` must be 'auto', True, False or a dict of {{n_samples, "
                                f"random_state, max_rows}}, got {value!r}")


@dataclass(frozen=True)
class ConsistencyResult:
    """Each model against itself under two batch plans, on one sample of rows.

    Attributes
    ----------
    metrics : dict[str, Estimate]
        ``batch/<role>/<metric>`` for role ``parent``, ``candidate``, ``diff`` and metric
        ``label_loyalty``, ``probability_loyalty`` (the report prefixes ``consistency/``).
    flips : list of dict
        The sampled rows whose label changed with the plan: ``row`` (index into the data),
        ``model``, ``label`` and ``probability`` under the headline plan, ``other_label``,
        ``other_probability`` (of the headline label) and ``max_abs_change`` (largest |Δp|).
    settings : dict
        ``n_requested``, ``n_sampled``, ``random_state``, ``rows`` (the sample), the two plans of
        each model (``plans``), which one is the headline (``headline_plan``), ``js_base``,
        ``n_resamples``, ``confidence``; per model ``n_flipped`` and ``max_abs_change``.
    """

    metrics: dict[str, Estimate]
    flips: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def estimates(self) -> dict[str, Estimate]:
        """The metrics under their keys within the section."""
        return dict(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {k: v.to_dict() for k, v in sorted(self.metrics.items())},
                "flips": to_jsonable(self.flips), "settings": to_jsonable(self.settings)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConsistencyResult:
        return cls(metrics={k: Estimate.from_dict(v) for k, v in d.get("metrics", {}).items()},
                   flips=[dict(r) for r in d.get("flips", [])], settings=dict(d.get("settings", {})))

    def table(self) -> pd.DataFrame:
        """The flipped rows as a DataFrame (one row per model and flipped data row)."""
        import pandas as pd

        columns = ["row", "model", "label", "probability", "other_label", "other_probability", "max_abs_change"]
        return pd.DataFrame(self.flips, columns=columns)

    def html(self) -> str:
        """This section as an HTML fragment (:func:`mlflow_trusteq.report.consistency_fragment`)."""
        from .report import consistency_fragment

        return consistency_fragment(self)


def measure_self_consistency(
    models: Mapping[str, ProbaModel],
    others: Mapping[str, ProbaModel],
    records: pd.DataFrame,
    headline: Mapping[str, np.ndarray],
    *,
    candidate_perm: np.ndarray,
    labels: tuple[str, ...],
    config: ConsistencyConfig,
    headline_plan: str,
    js_base: float,
    n_resamples: int,
    confidence: float,
    random_state: int,
) -> ConsistencyResult:
    """Score a sample of ``records`` under the other plan and compare each model with itself.

    Parameters
    ----------
    models : mapping
        ``{"parent": ..., "candidate": ...}``: the adapters that scored the report.
    others : mapping
        The same models under the other batch plan (:meth:`BaseAdapter.with_batch_plan`).
    records : DataFrame
        The rows the report scored, in order.
    headline : mapping
        Each model's ``(n, k)`` probabilities as the report scored them (the candidate's columns in
        the parent's label order).
    candidate_perm : ndarray
        The candidate's column permutation onto the parent's labels.
    labels : tuple of str
        The parent's labels (for the flipped rows).
    config : ConsistencyConfig
    headline_plan : {"evaluation", "serving"}
        Which plan scored the report (the other one is scored here).
    js_base, n_resamples, confidence, random_state
        As for the report; ``random_state`` seeds the sample unless ``config.random_state`` does.

    Returns
    -------
    ConsistencyResult
    """
    from .metrics import mean_ci

    rows, seed = _sample_rows(len(records), config, random_state)
    sample = records.iloc[rows]
    ci: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence, "random_state": seed}
    per_example: dict[str, dict[str, np.ndarray]] = {}
    metrics: dict[str, Estimate] = {}
    flips: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    for role in _ROLES:
        E, R = _both_plans(role, headline, others, sample, rows, candidate_perm)
        per_example[role], role_metrics = _self_loyalty(role, E, R, js_base, ci)
        metrics.update(role_metrics)
        role_flips, summary[role] = _flipped_rows(role, E, R, rows, labels, config.max_rows)
        flips.extend(role_flips)
    for metric in _METRICS:  # the paired difference: the same resampled rows for both models
        metrics[f"{METHOD}/diff/{metric}"] = mean_ci(
            per_example["candidate"][metric] - per_example["parent"][metric], **ci)
    settings = _settings(models, others, rows, seed, summary, config=config, headline_plan=headline_plan,
                         js_base=js_base, n_resamples=n_resamples, confidence=confidence)
    return ConsistencyResult(metrics, flips, settings)


def _sample_rows(n: int, config: ConsistencyConfig, random_state: int) -> tuple[np.ndarray, int]:
    """The sorted sample of row indices (every row when the data is smaller) and the seed that drew it."""
    m = min(config.n_samples, n)
    seed = config.random_state if config.random_state is not None else random_state
    rows = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
    if m < config.n_samples:
        logger.info("self-consistency: %d rows requested, the data has %d: every row is scored", config.n_samples, n)
    return rows, seed


def _both_plans(role: str, headline: Mapping[str, np.ndarray], others: Mapping[str, ProbaModel],
                sample: pd.DataFrame, rows: np.ndarray, candidate_perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One model's probabilities on the sample: ``E`` under the headline plan, ``R`` scored now under the other."""
    logger.info("self-consistency: scoring %d rows with the %s under its other batch plan", len(rows), role)
    E = np.asarray(headline[role], dtype=np.float64)[rows]
    R = np.asarray(others[role].predict_proba(sample), dtype=np.float64)
    if role == "candidate":
        R = R[:, candidate_perm]
    if R.shape != E.shape:
        raise InvalidInputError(f"the {role} returned shape {R.shape} under its other batch plan, {E.shape} "
                                "under the headline plan")
    return E, R


def _self_loyalty(role: str, E: np.ndarray, R: np.ndarray, js_base: float,
                  ci: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Estimate]]:
    """One model's per-row self-loyalty and its estimates (point estimate of the metric, bootstrap interval)."""
    from .metrics import js_divergence, label_loyalty_score, mean_ci, probability_loyalty_score

    same = (E.argmax(axis=1) == R.argmax(axis=1)).astype(np.float64)
    loyalty = 1.0 - np.sqrt(js_divergence(E, R, base=js_base))
    per_example = {"label_loyalty": same, "probability_loyalty": loyalty}
    points = {"label_loyalty": label_loyalty_score(E, R),
              "probability_loyalty": probability_loyalty_score(E, R, base=js_base)}
    metrics: dict[str, Estimate] = {}
    for metric in _METRICS:
        est = mean_ci(per_example[metric], **ci)
        metrics[f"{METHOD}/{role}/{metric}"] = Estimate(points[metric], est.lower, est.upper, est.confidence)
    return per_example, metrics


def _flipped_rows(role: str, E: np.ndarray, R: np.ndarray, rows: np.ndarray, labels: tuple[str, ...],
                  max_rows: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The sampled rows whose label changed with the plan (at most ``max_rows``), and the model's counts."""
    change = np.abs(E - R)
    flipped = np.flatnonzero(E.argmax(axis=1) != R.argmax(axis=1))
    summary = {"n_flipped": int(flipped.size), "max_abs_change": float(change.max()) if len(rows) else 0.0}
    flips = []
    for j in flipped[:max_rows]:
        a, b = int(E[j].argmax()), int(R[j].argmax())
        flips.append({"row": int(rows[j]), "model": role, "label": labels[a], "probability": float(E[j, a]),
                      "other_label": labels[b], "other_probability": float(R[j, a]),
                      "max_abs_change": float(change[j].max())})
    return flips, summary


def _settings(models: Mapping[str, ProbaModel], others: Mapping[str, ProbaModel], rows: np.ndarray, seed: int,
              summary: Mapping[str, Mapping[str, Any]], *, config: ConsistencyConfig, headline_plan: str,
              js_base: float, n_resamples: int, confidence: float) -> dict[str, Any]:
    """What the result records: the sample, both plans of each model, the interval settings, the flip counts."""
    other_plan = "serving" if headline_plan == "evaluation" else "evaluation"
    return {
        "method": METHOD, "n_requested": config.n_samples, "n_sampled": len(rows), "random_state": seed,
        "rows": [int(r) for r in rows], "headline_plan": headline_plan, "other_plan": other_plan,
        "plans": {role: {headline_plan: _plan_of(models[role]), other_plan: _plan_of(others[role])}
                  for role in _ROLES},
        "js_base": js_base, "n_resamples": n_resamples, "confidence": confidence, "max_rows": config.max_rows,
        **{f"{role}_{k}": v for role in _ROLES for k, v in summary[role].items()},
    }


def _plan_of(model: Any) -> dict[str, Any]:
    plan: BatchPlan | None = getattr(model, "batch_plan", lambda: None)()
    return plan.given() if plan is not None else {}
