r"""What the model-update literature measures about a candidate that replaces its parent.

Pure numpy (scipy for two distributions); gold labels are required for every function here. With
``r_i = [\arg\max P_i = y_i]`` (the parent right) and ``s_i = [\arg\max Q_i = y_i]`` (the candidate
right), over ``n`` examples:

- **The split of disagreement** (:func:`disagreement_split`): negative flips
  ``#{r_i, not s_i} / n``, positive flips ``#{not r_i, s_i} / n`` and *wrong to other wrong*
  ``#{not r_i, not s_i, argmax P_i != argmax Q_i} / n``; the three add up to ``1 - label loyalty``.
  Each is a proportion: a Wilson score interval.
- **Backward trust compatibility** (Bansal et al. 2019, "Updates in Human-AI Teams")
  ``BTC = #{r_i, s_i} / #{r_i}``: of the examples the parent got right, the share the candidate also
  gets right; **backward error compatibility** ``BEC = #{not r_i, not s_i} / #{not s_i}``: of the
  candidate's errors, the share the parent also made. Proportions of their own denominators: Wilson.
  ``NaN`` (no interval) when the denominator is 0.
- **McNemar's test** of ``H0: P(r, not s) = P(not r, s)`` on the paired correctness
  (:func:`mcnemar_test`): with ``b`` negative and ``c`` positive flips, the exact binomial test
  (``p = min(1, 2 F_{Bin(b+c, 1/2)}(min(b, c)))``, statistic ``min(b, c)``) when ``b + c <``
  :data:`MCNEMAR_EXACT_BELOW`, else the chi-square test with Edwards' continuity correction
  (``(max(|b - c| - 1, 0))^2 / (b + c)`` on one degree of freedom). The method used is recorded.
- **Selective-prediction risk** (:func:`aurc`): the area under the risk-coverage curve with the
  confidence ``max_j P_ij`` (Geifman & El-Yaniv 2017). The examples are accepted in descending
  confidence; at each distinct confidence ``t`` the coverage is ``#{c_i >= t} / n`` and the risk the
  error rate among them; the AURC is the step integral ``sum_t (coverage_t - coverage_{t-1}) risk_t``.
  Without ties this is ``(1/n) sum_{i=1}^n risk(first i)``; tied confidences are accepted together,
  so the value does not depend on the order of the examples. Lower is better. ``diff/aurc`` is the
  candidate's minus the parent's, with a bias-corrected paired bootstrap interval (the same
  resampled examples for both models).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import binom, chi2

from .._errors import InvalidInputError
from .._types import Estimate
from ._validation import check_confidence, check_int, check_pair, check_proba, check_targets
from .bootstrap import bootstrap_counts
from .intervals import bias_corrected_interval, wilson_interval

__all__ = ["DisagreementSplit", "McNemarResult", "UpdateSummary", "UpdateCounts", "disagreement_split",
           "backward_trust_compatibility", "backward_error_compatibility", "mcnemar_test", "aurc",
           "summarize_update", "UPDATE_KEYS", "MCNEMAR_EXACT_BELOW"]

logger = logging.getLogger(__name__)

#: below this many discordant pairs (b + c) McNemar's test is the exact binomial one
MCNEMAR_EXACT_BELOW = 25
#: the report keys :func:`summarize_update` produces
UPDATE_KEYS = ("wrong_to_other_wrong_rate", "backward_trust_compatibility", "backward_error_compatibility",
               "mcnemar_statistic", "mcnemar_p_value", "parent/aurc", "candidate/aurc", "diff/aurc")


@dataclass(frozen=True)
class _Correctness:
    """Per-example correctness of both models and whether their labels differ (validated input)."""

    parent_right: np.ndarray
    candidate_right: np.ndarray
    differ: np.ndarray

    @property
    def n(self) -> int:
        return int(self.parent_right.size)

    def count(self, mask: np.ndarray) -> int:
        return int(np.count_nonzero(mask))

    def counts(self) -> UpdateCounts:
        r, s = self.parent_right, self.candidate_right
        return UpdateCounts(self.n, self.count(r), self.count(s), self.count(r & ~s), self.count(~r & s),
                            self.count(~r & ~s & self.differ))


@dataclass(frozen=True)
class UpdateCounts:
    """The counts behind every metric here but the AURCs; they add up over disjoint sets of rows.

    ``n`` rows; the parent right on ``parent_right``, the candidate on ``candidate_right``;
    ``negative_flips`` (parent right, candidate wrong), ``positive_flips`` (the reverse) and
    ``wrong_to_other_wrong`` (both wrong, with different labels). The Spark engine reads them from
    the merged sums of the whole table (:mod:`mlflow_trusteq.spark`).
    """

    n: int
    parent_right: int
    candidate_right: int
    negative_flips: int
    positive_flips: int
    wrong_to_other_wrong: int

    def __post_init__(self) -> None:
        parts = (self.parent_right, self.candidate_right, self.negative_flips, self.positive_flips,
                 self.wrong_to_other_wrong)
        if min(self.n, *parts) < 0 or max(parts) > self.n or self.negative_flips > self.parent_right \
                or self.positive_flips > self.candidate_right:
            raise InvalidInputError(f"inconsistent update counts: {self}")

    def split(self, confidence: float) -> DisagreementSplit:
        rates = {"negative_flip_rate": self.negative_flips, "positive_flip_rate": self.positive_flips,
                 "wrong_to_other_wrong_rate": self.wrong_to_other_wrong}
        return DisagreementSplit(self.n, self.negative_flips, self.positive_flips, self.wrong_to_other_wrong,
                                 {k: _wilson_estimate(v, self.n, confidence) for k, v in rates.items()})

    def estimates(self, confidence: float) -> tuple[DisagreementSplit, McNemarResult, dict[str, Estimate]]:
        """The split, McNemar's test and the count-based estimates (every update key but the AURCs)."""
        split = self.split(confidence)
        test = _mcnemar(self.negative_flips, self.positive_flips, None)
        both_right = self.parent_right - self.negative_flips
        both_wrong = self.n - self.candidate_right - self.negative_flips
        est = {"wrong_to_other_wrong_rate": split.estimates["wrong_to_other_wrong_rate"],
               "backward_trust_compatibility": _wilson_estimate(both_right, self.parent_right, confidence),
               "backward_error_compatibility": _wilson_estimate(both_wrong, self.n - self.candidate_right,
                                                                confidence),
               "mcnemar_statistic": Estimate(test.statistic), "mcnemar_p_value": Estimate(test.p_value)}
        return split, test, est


def _correctness(y: Any, P: Any, Q: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Correctness]:
    P, Q = check_pair(P, Q)
    y = check_targets(y, P.shape[0], P.shape[1])
    a, b = P.argmax(axis=1), Q.argmax(axis=1)
    return y, P, Q, _Correctness(a == y, b == y, a != b)


@dataclass(frozen=True)
class DisagreementSplit:
    """Counts and rates (over ``n``) of the three kinds of disagreement, with Wilson intervals."""

    n: int
    negative_flips: int
    positive_flips: int
    wrong_to_other_wrong: int
    estimates: dict[str, Estimate] = field(default_factory=dict)


def disagreement_split(y: Any, P: Any, Q: Any, *, confidence: float = 0.95) -> DisagreementSplit:
    """Negative flips, positive flips and wrong-to-other-wrong, as counts and as rates over ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[.9, .1, 0], [.1, .9, 0], [.1, .1, .8], [.8, .1, .1]])
    >>> Q = np.array([[.1, .9, 0], [.9, .1, 0], [.1, .8, .1], [.8, .1, .1]])
    >>> s = disagreement_split([0, 0, 0, 0], P, Q)
    >>> s.negative_flips, s.positive_flips, s.wrong_to_other_wrong
    (1, 1, 1)
    """
    confidence = check_confidence(confidence)
    return _correctness(y, P, Q)[3].counts().split(confidence)


def _wilson_estimate(k: int, n: int, confidence: float) -> Estimate:
    """``k / n`` with its Wilson interval; NaN without interval when ``n == 0``."""
    if n == 0:
        return Estimate(float("nan"))
    lo, hi = wilson_interval(k, n, confidence=confidence)
    return Estimate(k / n, lo, hi, confidence)


def backward_trust_compatibility(y: Any, P: Any, Q: Any) -> float:
    """Of the examples the parent gets right, the share the candidate also gets right (NaN if none).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[.9, .1], [.9, .1], [.1, .9]])
    >>> Q = np.array([[.9, .1], [.1, .9], [.1, .9]])
    >>> backward_trust_compatibility([0, 0, 0], P, Q)
    0.5
    """
    _, _, _, c = _correctness(y, P, Q)
    return _ratio(c.count(c.parent_right & c.candidate_right), c.count(c.parent_right))


def backward_error_compatibility(y: Any, P: Any, Q: Any) -> float:
    """Of the candidate's errors, the share the parent also made (NaN when the candidate makes none).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[.9, .1], [.9, .1], [.1, .9]])
    >>> Q = np.array([[.9, .1], [.1, .9], [.1, .9]])
    >>> backward_error_compatibility([0, 0, 0], P, Q)
    0.5
    """
    _, _, _, c = _correctness(y, P, Q)
    return _ratio(c.count(~c.parent_right & ~c.candidate_right), c.count(~c.candidate_right))


def _ratio(k: int, n: int) -> float:
    return k / n if n else float("nan")


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on the paired correctness: ``b`` negative, ``c`` positive flips."""

    statistic: float
    p_value: float
    method: str  # "exact" or "chi2_corrected"
    negative_flips: int
    positive_flips: int

    def to_dict(self) -> dict[str, Any]:
        return {"statistic": self.statistic, "p_value": self.p_value, "method": self.method,
                "negative_flips": self.negative_flips, "positive_flips": self.positive_flips}


def mcnemar_test(y: Any, P: Any, Q: Any, *, exact: bool | None = None) -> McNemarResult:
    """McNemar's test that the parent and the candidate are right equally often (paired).

    ``exact=None`` picks the exact binomial test when ``b + c <`` :data:`MCNEMAR_EXACT_BELOW`, else
    the continuity-corrected chi-square test; ``True``/``False`` force one. The exact version equals
    ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True)``; the chi-square version equals
    ``mcnemar(table, exact=False, correction=True)`` whenever ``b != c`` (for ``b == c`` statsmodels
    gives ``1 / (b + c)``; here the corrected gap is clipped at 0, so the statistic is 0 and p is 1).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[.9, .1]] * 10)
    >>> Q = np.array([[.1, .9]] * 3 + [[.9, .1]] * 7)
    >>> r = mcnemar_test(np.zeros(10, dtype=int), P, Q)
    >>> r.method, r.statistic, round(r.p_value, 4)
    ('exact', 0.0, 0.25)
    """
    if exact is not None and not isinstance(exact, bool):
        raise InvalidInputError(f"Expected `exact` to be True, False or None, got {exact!r}")
    _, _, _, c = _correctness(y, P, Q)
    b = c.count(c.parent_right & ~c.candidate_right)
    cc = c.count(~c.parent_right & c.candidate_right)
    return _mcnemar(b, cc, exact)


def _mcnemar(b: int, c: int, exact: bool | None) -> McNemarResult:
    use_exact = (b + c < MCNEMAR_EXACT_BELOW) if exact is None else exact
    if b + c == 0:
        return McNemarResult(0.0, 1.0, "exact" if use_exact else "chi2_corrected", b, c)
    if use_exact:
        stat = float(min(b, c))
        return McNemarResult(stat, float(min(1.0, 2.0 * binom.cdf(stat, b + c, 0.5))), "exact", b, c)
    stat = max(abs(b - c) - 1.0, 0.0) ** 2 / (b + c)
    return McNemarResult(float(stat), float(chi2.sf(stat, 1)), "chi2_corrected", b, c)


def aurc(y: Any, P: Any) -> float:
    """Area under the risk-coverage curve, confidence ``max_j P_ij`` (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[.9, .1], [.8, .2], [.7, .3], [.6, .4]])
    >>> aurc([0, 0, 1, 0], P)  # risks 0, 0, 1/3, 1/4 at coverage 1/4 ... 1
    0.14583333333333331
    """
    P = check_proba(P, "P")
    y = check_targets(y, P.shape[0], P.shape[1])
    order, starts = _confidence_groups(P)
    err = (P.argmax(axis=1) != y).astype(np.float64)
    return float(_aurc_weighted(np.ones((1, P.shape[0])), err, order, starts)[0])


def _confidence_groups(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order of descending confidence and the start of each run of equal confidences in it."""
    conf = P.max(axis=1)
    order = np.argsort(-conf, kind="stable")
    s = conf[order]
    starts = np.concatenate([[0], np.flatnonzero(s[1:] != s[:-1]) + 1])
    return order, starts


def _aurc_weighted(weights: np.ndarray, err: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """AURC under each row of example ``weights`` (bootstrap counts; all ones: the sample itself)."""
    w = weights[:, order]
    group_w = np.add.reduceat(w, starts, axis=1)
    group_e = np.add.reduceat(w * err[order][None, :], starts, axis=1)
    cum_w, cum_e = np.cumsum(group_w, axis=1), np.cumsum(group_e, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        risk = np.where(cum_w > 0, cum_e / np.where(cum_w > 0, cum_w, 1.0), 0.0)
    total = np.maximum(w.sum(axis=1, keepdims=True), 1.0)
    return np.asarray((group_w / total * risk).sum(axis=1))


@dataclass(frozen=True)
class UpdateSummary:
    """The model-update metrics of a pair: report keys -> estimates, and what produced them."""

    estimates: dict[str, Estimate]
    split: DisagreementSplit
    mcnemar: McNemarResult
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The counts and settings (JSON-safe) that the report keeps under ``settings["update"]``."""
        return {"n_examples": self.split.n, "negative_flips": self.split.negative_flips,
                "positive_flips": self.split.positive_flips,
                "wrong_to_other_wrong": self.split.wrong_to_other_wrong,
                "mcnemar": self.mcnemar.to_dict(), **self.settings}


def summarize_update(y: Any, P: Any, Q: Any, *, n_resamples: int = 1000, confidence: float = 0.95,
                     random_state: int = 0, counts: UpdateCounts | None = None) -> UpdateSummary:
    """Every metric of this module for a parent ``P`` and candidate ``Q`` with gold labels ``y``.

    Keys: :data:`UPDATE_KEYS` (the negative and positive flip rates are :func:`~.summarize_pair`'s).
    ``n_resamples=0`` gives ``diff/aurc`` and the two AURCs without an interval. ``counts``: the
    :class:`UpdateCounts` of a whole table the rows ``y, P, Q`` are a sample of (the Spark engine):
    every metric but the AURCs then comes from them, the AURCs from the rows.
    """
    confidence = check_confidence(confidence)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=0)
    y, P, Q, c = _correctness(y, P, Q)
    split, test, est = (counts if counts is not None else c.counts()).estimates(confidence)
    est.update(_aurc_estimates(y, P, Q, n_resamples, confidence, random_state))
    settings = {"mcnemar_method": test.method, "mcnemar_exact_below": MCNEMAR_EXACT_BELOW,
                "aurc_confidence": "max probability; tied confidences accepted together",
                "aurc_interval": "bias_corrected" if n_resamples else "none",
                "n_resamples": n_resamples, "random_state": random_state}
    return UpdateSummary(est, split, test, settings)


def _aurc_estimates(y: np.ndarray, P: np.ndarray, Q: np.ndarray, n_resamples: int, confidence: float,
                    random_state: int) -> dict[str, Estimate]:
    """Both AURCs and their difference; intervals from the same paired bootstrap resamples."""
    n = y.size
    parts = {}
    for role, M in (("parent", P), ("candidate", Q)):
        order, starts = _confidence_groups(M)
        parts[role] = (order, starts, (M.argmax(axis=1) != y).astype(np.float64))
    ones = np.ones((1, n))
    value = {r: float(_aurc_weighted(ones, e, o, s)[0]) for r, (o, s, e) in parts.items()}
    value["diff"] = value["candidate"] - value["parent"]
    if n_resamples == 0:
        return {f"{r}/aurc": Estimate(v) for r, v in value.items()}
    reps: dict[str, list[np.ndarray]] = {"parent": [], "candidate": []}
    for counts in bootstrap_counts(n, n_resamples=n_resamples, rng=np.random.default_rng(random_state)):
        for r, (o, s, e) in parts.items():
            reps[r].append(_aurc_weighted(counts, e, o, s))
    arr = {r: np.concatenate(v) for r, v in reps.items()}
    arr["diff"] = arr["candidate"] - arr["parent"]
    out = {}
    for r, v in value.items():
        lo, hi = bias_corrected_interval(arr[r], v, confidence=confidence)
        out[f"{r}/aurc"] = Estimate(v, lo, hi, confidence) if lo is not None else Estimate(v)
    return out
