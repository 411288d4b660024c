"""The metric-key grammar and the metric registry: the one place that knows what a key means.

Grammar
-------
A report key is a ``/``-separated path::

    [<section>/<method>/[<qualifier>/...]][<role>/]<metric>

- ``section``: ``alignment``, ``robustness``, ``consistency`` or ``slices`` (absent for the core metrics);
- ``method``: the explainer (``lime``, ``shap``), the attack recipe (``word``, ``char``) or, for
  self-consistency, ``batch`` (each model against itself under another batch plan); for slices,
  ``worst`` (the report's headline: the core metric on the slice ranked worst by it, see
  :meth:`mlflow_trusteq.slices.SliceResult.ranked`) or ``each`` (a policy check judged on every slice);
- ``qualifier``: a variant of the measurement (``normalized``, ``noise_floor``, ``own``,
  ``reverse``);
- ``role``: ``parent``, ``candidate`` or ``diff`` (candidate minus parent); absent for a *pair*
  metric, one value for the two models;
- ``metric``: the base metric name, registered once in :data:`METRIC_INFO`.

Examples: ``label_loyalty``, ``parent/accuracy``, ``diff/ece_equal_mass``,
``alignment/lime/noise_floor/top_k_jaccard``, ``robustness/char/own/candidate/accuracy``.
When logged to MLflow a key gets the ``trusteq/`` namespace and its interval bounds the
``/ci_lower`` and ``/ci_upper`` suffixes (:func:`mlflow_name`, :func:`parse_mlflow_name`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SECTIONS", "ROLES", "MetricKey", "parse_key", "format_key", "MetricInfo", "METRIC_INFO",
           "register_metric", "metric_info", "mlflow_name", "parse_mlflow_name", "NAMESPACE"]

SECTIONS = ("alignment", "robustness", "consistency", "slices")
ROLES = ("parent", "candidate", "diff")
NAMESPACE = "trusteq"
_BOUNDS = ("ci_lower", "ci_upper")


@dataclass(frozen=True)
class MetricKey:
    """A parsed report key (see the module docstring for the grammar)."""

    metric: str
    role: str | None = None
    section: str | None = None
    method: str | None = None
    qualifiers: tuple[str, ...] = ()

    @property
    def row(self) -> str:
        """The key without its role: one table row holds the parent, candidate and diff values."""
        return "/".join(self._prefix() + [self.metric])

    @property
    def is_pair(self) -> bool:
        """True for a key with one value for the two models (no role)."""
        return self.role is None

    @property
    def group(self) -> str:
        """Display group: the section, else the registered group of the base metric (``other``).

        A slice's headline (``slices/worst/<m>``) is shown with the fidelity metrics, beside the aggregate.
        """
        if self.section == "slices":
            return "fidelity"
        if self.section is not None:
            return self.section
        info = METRIC_INFO.get(self.metric)
        return info.group if info is not None else "other"

    @property
    def skipped_under(self) -> str:
        """The ``TrustReport.skipped`` entry that explains why this key is absent."""
        if self.section is not None:
            return self.section
        info = METRIC_INFO.get(self.metric)
        return info.skipped_under or self.metric if info is not None else self.metric

    def _prefix(self) -> list[str]:
        if self.section is None:
            return []
        return [self.section, *([self.method] if self.method else []), *self.qualifiers]

    def __str__(self) -> str:
        return format_key(self)


def parse_key(key: str) -> MetricKey:
    """Parse a report key into a :class:`MetricKey` (``format_key(parse_key(k)) == k``).

    Raises ``ValueError`` naming the key when it does not follow the grammar.

    Examples
    --------
    >>> parse_key("robustness/char/own/diff/after_attack_accuracy")
    MetricKey(metric='after_attack_accuracy', role='diff', section='robustness', method='char', qualifiers=('own',))
    >>> parse_key("diff/accuracy").row, parse_key("diff/accuracy").group
    ('accuracy', 'accuracy')
    """
    parts = key.split("/")
    if not key or any(not p for p in parts):
        raise ValueError(f"malformed metric key {key!r}: empty path segment")
    metric, rest = parts[-1], parts[:-1]
    role = None
    if rest and rest[-1] in ROLES:
        role, rest = rest[-1], rest[:-1]
    if not rest:
        return MetricKey(metric, role)
    if rest[0] not in SECTIONS or len(rest) < 2:
        raise ValueError(f"malformed metric key {key!r}: a prefix must be <section>/<method>/... with section "
                         f"in {SECTIONS}, got {'/'.join(rest)!r}")
    return MetricKey(metric, role, rest[0], rest[1], tuple(rest[2:]))


def format_key(key: MetricKey) -> str:
    """The string form of a :class:`MetricKey`."""
    return "/".join(key._prefix() + ([key.role] if key.role else []) + [key.metric])


def mlflow_name(key: str, bound: str | None = None) -> str:
    """The MLflow metric name of a report key (``bound``: ``ci_lower`` or ``ci_upper``)."""
    return f"{NAMESPACE}/{key}" + (f"/{bound}" if bound else "")


def parse_mlflow_name(name: str) -> tuple[MetricKey, str | None] | None:
    """``(key, bound)`` of a ``trusteq/...`` MLflow metric name; ``None`` for other names.

    Names that are not report keys (``trusteq/verdict``, ``trusteq/n_examples``) also give ``None``.
    """
    head, _, rest = name.partition("/")
    if head != NAMESPACE or not rest:
        return None
    bound = None
    base, _, last = rest.rpartition("/")
    if last in _BOUNDS and base:
        rest, bound = base, last
    try:
        key = parse_key(rest)
    except ValueError:
        return None
    return (key, bound) if key.metric in METRIC_INFO else None


@dataclass(frozen=True)
class MetricInfo:
    """Metadata that travels with a base metric: which way is better, its range, its group.

    ``group`` is where the report shows it; ``skipped_under`` names the ``TrustReport.skipped``
    entry that explains its absence (default: the metric's own name).
    """

    name: str
    higher_is_better: bool
    lower_bound: float | None = 0.0
    upper_bound: float | None = 1.0
    description: str = ""
    group: str = "other"
    skipped_under: str | None = None


#: base metric name -> metadata; each name registered once, here
METRIC_INFO: dict[str, MetricInfo] = {}


def register_metric(info: MetricInfo) -> MetricInfo:
    """Add the metadata of a new base metric name; registering a name twice is an error."""
    if info.name in METRIC_INFO:
        raise ValueError(f"metric {info.name!r} is already registered; each base metric is registered once, "
                         "in mlflow_trusteq._keys")
    METRIC_INFO[info.name] = info
    return info


def metric_info(key: str) -> MetricInfo:
    """Metadata of a report key, looked up by its base metric name.

    Raises ``KeyError`` naming the key when the base metric is unknown.
    """
    base = key.rsplit("/", 1)[-1]
    try:
        return METRIC_INFO[base]
    except KeyError:
        raise KeyError(f"unknown metric {key!r} (base name {base!r}); known: {sorted(METRIC_INFO)}") from None


def _fidelity_calibration_efficiency() -> list[MetricInfo]:
    fid, acc, cal, eff = "fidelity", "accuracy", "calibration", "efficiency"
    return [
        MetricInfo("label_loyalty", True, description="share of examples where both models predict the same label",
                   group=fid),
        MetricInfo("probability_loyalty", True, description="mean of 1 - sqrt(JS(P||Q)) over examples", group=fid),
        MetricInfo("negative_flip_rate", False, description="parent right, candidate wrong, over n", group=fid,
                   skipped_under=acc),
        MetricInfo("positive_flip_rate", False, description="parent wrong, candidate right, over n", group=fid,
                   skipped_under=acc),
        MetricInfo("accuracy", True, group=acc, skipped_under=acc),
        MetricInfo("ece_equal_width", False, description="expected calibration error, equal-width bins", group=cal,
                   skipped_under=cal),
        MetricInfo("ece_equal_mass", False, description="expected calibration error, equal-mass bins", group=cal,
                   skipped_under=cal),
        MetricInfo("ece_sq_debiased", False, None, 1.0,
                   "squared l2 calibration error, debiased (Kumar et al. 2019), equal-width bins; may be < 0",
                   group=cal, skipped_under=cal),
        MetricInfo("latency", False, 0.0, None, "seconds per call at batch size 1 (median of repeats)", group=eff),
        MetricInfo("mce_equal_width", False, description="maximum calibration error, equal-width bins", group=cal,
                   skipped_under=cal),
        MetricInfo("mce_equal_mass", False, description="maximum calibration error, equal-mass bins", group=cal,
                   skipped_under=cal),
        MetricInfo("brier_loss", False, 0.0, 2.0, "multi-class Brier score, summed over classes", group=cal,
                   skipped_under=cal),
        MetricInfo("log_loss", False, 0.0, None, "negative log-likelihood (natural log)", group=cal,
                   skipped_under=cal),
        MetricInfo("speedup", True, 0.0, None, "candidate throughput / parent throughput, same batches", group=eff),
        MetricInfo("size_ratio", False, 0.0, None, "candidate size on disk / parent size on disk", group=eff),
        MetricInfo("throughput", True, 0.0, None, "rows per second", group=eff),
    ]


def _alignment_robustness() -> list[MetricInfo]:
    return [
        # attribution alignment (explain/agreement.py computes them)
        MetricInfo("top_k_jaccard", True, 0.0, 1.0, "Jaccard index of the two top-k feature sets by |attribution|"),
        MetricInfo("feature_agreement", True, 0.0, 1.0, "|top-k(a) ∩ top-k(b)| / k"),
        MetricInfo("rank_correlation", True, -1.0, 1.0, "Spearman correlation of |attribution| over all features"),
        MetricInfo("sign_agreement", True, 0.0, 1.0, "share of the parent's top-k features with the same sign"),
        # robustness (attack/runner.py computes them)
        MetricInfo("after_attack_accuracy", True,
                   description="share of attacked examples still classified correctly"),
        MetricInfo("attack_success_rate", False,
                   description="share of attacked examples whose label the attack flipped"),
        MetricInfo("mean_queries", True, 0.0, None, "mean model queries per attacked example"),
        MetricInfo("median_queries", True, 0.0, None, "median model queries per attacked example"),
        MetricInfo("words_changed", True, description="mean fraction of words changed by a successful attack"),
        MetricInfo("transfer_rate", False,
                   description="share of adversarial texts found against one model that the other also misclassifies"),
    ]


def _model_update() -> list[MetricInfo]:
    return [
        # model update (metrics/update.py computes them; gold labels needed, shown in the report's "Model update")
        MetricInfo("wrong_to_other_wrong_rate", False,
                   description="both models wrong with different labels, over n", skipped_under="update"),
        MetricInfo("backward_trust_compatibility", True,
                   description="of the examples the parent gets right, the share the candidate also gets right "
                               "(Bansal et al. 2019)", skipped_under="update"),
        MetricInfo("backward_error_compatibility", True,
                   description="of the candidate's errors, the share the parent also made (Bansal et al. 2019)",
                   skipped_under="update"),
        MetricInfo("mcnemar_statistic", False, 0.0, None,
                   "McNemar's statistic on the paired correctness (exact: min(b, c); else continuity-corrected "
                   "chi-square)", skipped_under="update"),
        MetricInfo("mcnemar_p_value", True, 0.0, 1.0,
                   "McNemar's p-value: small means the two models are right at different rates",
                   skipped_under="update"),
        MetricInfo("aurc", False, 0.0, 1.0, "area under the risk-coverage curve, confidence = max probability",
                   skipped_under="update"),
    ]


def _register_all() -> None:
    for info in (*_fidelity_calibration_efficiency(), *_alignment_robustness(), *_model_update()):
        register_metric(info)


_register_all()
