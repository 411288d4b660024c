"""Gate policy: thresholds -> Verdict.  (Verdict types first; Policy is below.)"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._errors import PolicyError
from ._format import format_short
from ._guards import GuardPolicy, judge_guards
from ._keys import format_key, metric_info, parse_key
from ._types import Estimate

if TYPE_CHECKING:
    from .compare import TrustReport
    from .slices import SliceResult, SliceStats

__all__ = ["CheckResult", "Verdict", "Check", "Policy", "DEFAULT_POLICY"]

Status = Literal["pass", "fail", "skipped"]


class _Judged(Protocol):
    """What a check reads: a :class:`~mlflow_trusteq.TrustReport`, or one slice of it (:class:`_SliceView`)."""

    @property
    def metrics(self) -> Mapping[str, Estimate]: ...

    @property
    def n_examples(self) -> int: ...

    @property
    def skipped(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check of the policy on one report key."""

    metric: str
    status: Status
    reason: str
    value: float | None = None
    bound: float | None = None  # the number that was judged (a CI bound or the point estimate)
    threshold: float | None = None


@dataclass(frozen=True)
class Verdict:
    """Pass, fail or incomplete, with one readable reason per failed or skipped check.

    *Fail*: something was measured and is not equivalent. *Incomplete*: nothing measured failed, but
    a check the policy needs could not be judged (a stage errored or is missing a dependency, no
    gold labels, no confidence interval from too few examples): fix that and evaluate again. Both
    block promotion (``passed`` is false); the signed verdict on a model version is then ``fail``.
    """

    passed: bool
    checks: tuple[CheckResult, ...] = ()
    policy_digest: str = ""
    policy_name: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def incomplete(self) -> bool:
        """Not passed, and no check failed on a measured value (each failure is a value that is missing)."""
        failed = [c for c in self.checks if c.status == "fail"]
        return not self.passed and bool(failed) and all(c.bound is None for c in failed)

    @property
    def label(self) -> str:
        """``"pass"``, ``"fail"`` or ``"incomplete"``."""
        return "pass" if self.passed else "incomplete" if self.incomplete else "fail"

    @property
    def reasons(self) -> list[str]:
        """One sentence per check that did not pass."""
        return [c.reason for c in self.checks if c.status != "pass"]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.label, "passed": self.passed, "policy_name": self.policy_name,
                "policy_digest": self.policy_digest, "reasons": self.reasons,
                "checks": [asdict(c) for c in self.checks], "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(passed=bool(d["passed"]), checks=tuple(CheckResult(**c) for c in d.get("checks", [])),
                   policy_digest=d.get("policy_digest", ""), policy_name=d.get("policy_name", "default"),
                   extra=dict(d.get("extra", {})))


# ---------------------------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------------------------

_CHECK_KEYS = {"threshold", "min_absolute_change", "min_relative_change", "margin", "greater_is_better",
               "required", "decide_on", "slices"}
_TOP_KEYS = {"name", "decide_on", "checks", "description", "guards"}

#: The default policy. Fidelity, accuracy and calibration are required (no labels -> fail,
#: closed); alignment and robustness are judged when those sections were run and are otherwise
#: reported as skipped without failing the verdict — but a section that was requested and gave no
#: value (it errored, needed labels, does not apply) always fails. Calibration is gated on the
#: debiased squared calibration error, whose interval covers (README, "What is measured"): a
#: margin of 0.0025 = 0.05², the old ±0.05 on the ECE in squared units; the binned ECEs are
#: reported for comparison with the studies.
DEFAULT_POLICY: dict[str, Any] = {
    "name": "default",
    "decide_on": "bound",
    "checks": {
        "label_loyalty": {"threshold": 0.95},
        "probability_loyalty": {"threshold": 0.90},
        "diff/accuracy": {"threshold": -0.02},
        "diff/ece_sq_debiased": {"margin": 0.0025},
        "diff/brier_loss": {"margin": 0.05},
        "alignment/lime/normalized/top_k_jaccard": {"threshold": 0.5, "required": False},
        "alignment/shap/normalized/top_k_jaccard": {"threshold": 0.5, "required": False},
        "robustness/word/diff/after_attack_accuracy": {"threshold": -0.10, "required": False},
        # self-consistency: the paired difference of label self-loyalty (candidate minus parent), lower CI bound
        "consistency/batch/diff/label_loyalty": {"threshold": -0.02, "required": False},
    },
}


@dataclass(frozen=True)
class Check:
    """One threshold on one report key, with MLflow ``MetricThreshold`` semantics.

    - ``threshold``: absolute bound — value >= threshold when higher is better, <= otherwise.
    - ``min_absolute_change`` / ``min_relative_change``: for a ``candidate/<m>`` key, the
      candidate must beat ``parent/<m>`` by at least this much (MLflow's semantics); a negative
      value is a tolerated degradation (a non-inferiority margin), an extension of MLflow's.
    - ``margin``: two-sided similarity — the value (typically a ``diff/<m>``) lies in
      ``[-margin, margin]``.
    - ``decide_on``: ``"bound"`` judges the pessimistic end of the confidence interval (the lower
      bound when higher is better), ``"point"`` the point estimate.
    - ``required``: when false, a check whose metric was *not requested* is skipped without
      failing the verdict. A metric whose stage errored, or that is required and missing, fails.
    """

    metric: str
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    margin: float | None = None
    greater_is_better: bool | None = None
    required: bool = True
    decide_on: str = "bound"
    #: also judge the check on every slice (``"all"``) or on the slices of these specs; ``None``: the aggregate only
    slices: str | tuple[str, ...] | None = None


@dataclass(frozen=True)
class Policy:
    """A named set of checks; ``Policy.judge(report)`` gives the :class:`Verdict`."""

    checks: tuple[Check, ...]
    name: str = "default"
    decide_on: str = "bound"
    source: dict[str, Any] = field(default_factory=dict)
    #: the comparability guards (the ``[guards]`` table; :mod:`mlflow_trusteq._guards`), judged with the checks
    guards: GuardPolicy = field(default_factory=GuardPolicy)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def default(cls) -> Policy:
        """The documented default policy (:data:`DEFAULT_POLICY`)."""
        return cls.from_dict(DEFAULT_POLICY)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        """Build from a dict shaped like :data:`DEFAULT_POLICY`; typos are errors, not ignored."""
        if not isinstance(d, dict):
            raise PolicyError(f"a policy must be a mapping, got {type(d).__name__}")
        unknown = set(d) - _TOP_KEYS
        if unknown:
            raise PolicyError(f"unknown policy key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
        decide_on = d.get("decide_on", "bound")
        _check_decide_on(decide_on, "policy")
        checks_d = d.get("checks")
        if not isinstance(checks_d, dict) or not checks_d:
            raise PolicyError("a policy needs a non-empty [checks] table: metric key -> its thresholds")
        checks = [_parse_check(metric, spec, decide_on) for metric, spec in checks_d.items()]
        for key in ("name", "description"):
            if key in d and not isinstance(d[key], str):
                raise PolicyError(f"policy {key} must be a string, got {d[key]!r}")
        return cls(checks=tuple(checks), name=str(d.get("name", "custom")), decide_on=decide_on, source=d,
                   guards=GuardPolicy.from_dict(d.get("guards")))

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Read a TOML policy file (see :data:`DEFAULT_POLICY` for the shape)."""
        import tomllib

        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {str(p)!r}: {exc.strerror}") from None
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy file {str(p)!r} is not valid TOML: {exc}") from None
        d.setdefault("name", p.stem)
        return cls.from_dict(d)

    @classmethod
    def load(cls, policy: Policy | Mapping[str, Any] | str | Path | None) -> Policy:
        """A Policy from a Policy, a mapping (a dict), a TOML path, or ``None`` (the default)."""
        if policy is None:
            return cls.default()
        if isinstance(policy, Policy):
            return policy
        if isinstance(policy, Mapping):
            return cls.from_dict(dict(policy))
        if isinstance(policy, (str, Path)):
            return cls.from_toml(policy)
        raise PolicyError(f"cannot make a policy from {type(policy).__name__}")

    def to_dict(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        for c in self.checks:
            spec = {k: getattr(c, k) for k in ("threshold", "min_absolute_change", "min_relative_change",
                                                "margin", "greater_is_better") if getattr(c, k) is not None}
            spec["required"] = c.required
            spec["decide_on"] = c.decide_on
            if c.slices is not None:  # only when set: the digests of policies without slices do not change
                spec["slices"] = c.slices if isinstance(c.slices, str) else list(c.slices)
            checks[c.metric] = spec
        return {"name": self.name, "decide_on": self.decide_on, "checks": checks, "guards": self.guards.to_dict()}

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the policy: what a verdict was judged against."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    # -- judging -------------------------------------------------------------------------------
    def judge(self, report: TrustReport) -> Verdict:
        """Apply every check to ``report`` (a TrustReport); any fail or required skip fails."""
        sliced = [_judge_slices(c, report) for c in self.checks if c.slices is not None]
        results = tuple(_judge_one(c, report) for c in self.checks) + tuple(r for r, _ in sliced) \
            + judge_guards(self.guards, report)
        failed = [r for r in results if r.status == "fail"]
        passed = not failed and bool(results)
        extra = {"slices": {r.metric: detail for r, detail in sliced}} if sliced else {}
        return Verdict(passed=passed, checks=results, policy_digest=self.digest, policy_name=self.name, extra=extra)


def _parse_check(metric: str, spec: Any, decide_on: str) -> Check:
    """One ``[checks."<metric>"]`` table as a :class:`Check`; every mistake is a :class:`PolicyError` naming it."""
    if not isinstance(spec, dict):
        raise PolicyError(f"check {metric!r} must be a table of thresholds, got {spec!r}")
    bad = set(spec) - _CHECK_KEYS
    if bad:
        raise PolicyError(f"check {metric!r}: unknown key(s) {sorted(bad)}; allowed: {sorted(_CHECK_KEYS)}")
    try:
        parse_key(metric)
        metric_info(metric)
    except ValueError as exc:
        raise PolicyError(f"check {metric!r}: {exc}") from None
    except KeyError as exc:
        raise PolicyError(f"check {metric!r}: {exc.args[0]}") from None
    _check_types(metric, spec)
    _check_rules(metric, spec)
    c_decide = spec.get("decide_on", decide_on)
    _check_decide_on(c_decide, f"check {metric!r}")
    return Check(metric=metric, threshold=_opt_float(spec.get("threshold")),
                 min_absolute_change=_opt_float(spec.get("min_absolute_change")),
                 min_relative_change=_opt_float(spec.get("min_relative_change")),
                 margin=_opt_float(spec.get("margin")), greater_is_better=spec.get("greater_is_better"),
                 required=spec.get("required", True), decide_on=str(c_decide),
                 slices=_parse_slices(metric, spec.get("slices")))


def _check_rules(metric: str, spec: dict[str, Any]) -> None:
    """The rules of one check go together: at least one, a margin alone and >= 0, changes on candidate keys."""
    if not any(spec.get(k) is not None for k in ("threshold", "min_absolute_change", "min_relative_change", "margin")):
        raise PolicyError(f"check {metric!r} sets no threshold, min_absolute_change, min_relative_change or margin")
    if spec.get("margin") is not None:
        others = [k for k in ("threshold", "min_absolute_change", "min_relative_change") if spec.get(k) is not None]
        if others:
            raise PolicyError(f"check {metric!r}: margin (a two-sided similarity bound) cannot be combined "
                              f"with {', '.join(others)}; write one check per rule")
        if spec["margin"] < 0:
            raise PolicyError(f"check {metric!r}: margin must be >= 0, got {spec['margin']!r}")
    if (spec.get("min_absolute_change") is not None or spec.get("min_relative_change") is not None) \
            and not _is_core_candidate(metric):
        raise PolicyError(f"check {metric!r}: min_absolute_change/min_relative_change compare the "
                          "candidate with its parent, so they apply to 'candidate/<metric>' keys")


def _parse_slices(metric: str, value: Any) -> str | tuple[str, ...] | None:
    """A check's ``slices``: ``"all"``, a list of slice specs, or absent (the aggregate only)."""
    if value is None:
        return None
    key = parse_key(metric)
    if key.section is not None or key.metric in _NOT_PER_EXAMPLE:
        raise PolicyError(f"check {metric!r}: slices apply to the fidelity, accuracy and calibration metrics "
                          "(the pair summary measured per slice), not to a section or a timing")
    if value == "all":
        return "all"
    from ._errors import InvalidInputError
    from .slices import normalize_slice_specs

    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise PolicyError(f"check {metric!r}: slices must be \"all\" or a non-empty list of slice specs "
                          f"(e.g. [\"parent_class\", \"region\"]), got {value!r}")
    try:
        specs = normalize_slice_specs(list(value))
    except InvalidInputError as exc:
        raise PolicyError(f"check {metric!r}: {exc}") from None
    return specs


def _check_types(metric: str, spec: dict[str, Any]) -> None:
    """Every field of a check has its type: numbers are finite numbers, flags are booleans (not "false")."""
    for k in ("threshold", "min_absolute_change", "min_relative_change", "margin"):
        v = spec.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise PolicyError(f"check {metric!r}: {k} must be a finite number, got {v!r}")
    for k in ("greater_is_better", "required"):
        v = spec.get(k)
        if v is not None and not isinstance(v, bool):
            raise PolicyError(f"check {metric!r}: {k} must be true or false (a boolean), got {v!r}")
    if "required" in spec and spec["required"] is None:
        raise PolicyError(f"check {metric!r}: required must be true or false (a boolean), got None")


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _check_decide_on(value: Any, where: str) -> None:
    if value not in ("bound", "point"):
        raise PolicyError(f"{where}: decide_on must be 'bound' or 'point', got {value!r}")


def _is_core_candidate(metric: str) -> bool:
    key = parse_key(metric)
    return key.role == "candidate" and key.section is None


def _missing(check: Check, report: _Judged) -> CheckResult:
    section = parse_key(check.metric).skipped_under
    reason = report.skipped.get(section) or report.skipped.get(check.metric)
    # only a stage that was not requested may be skipped; requested and no value (an error, no labels,
    # not applicable, a NaN or a missing key of a stage that ran) fails, required or not
    not_requested = reason is not None and reason.startswith("not requested")
    why = reason or "the report does not contain this metric (or its value is NaN)"
    if check.required or not not_requested:
        return CheckResult(check.metric, "fail", f"{check.metric}: could not be judged ({why}); "
                           "the policy requires it, so the candidate fails (fail closed)")
    return CheckResult(check.metric, "skipped", f"{check.metric}: skipped ({why}); not required by the policy")


def _judge_one(check: Check, report: _Judged) -> CheckResult:
    est = report.metrics.get(check.metric)
    if est is None or est.value is None or not math.isfinite(est.value):
        return _missing(check, report)
    higher = (check.greater_is_better if check.greater_is_better is not None
              else metric_info(check.metric).higher_is_better)
    too_few = _too_few_examples(check, est, report, higher)
    if too_few is not None:
        return too_few
    use_bound = check.decide_on == "bound"
    if use_bound and (est.lower is None or est.upper is None) and check.metric not in ("speedup", "size_ratio"):
        return CheckResult(check.metric, "fail", f"{check.metric}: no confidence interval to judge "
                           "(decide_on='bound'); too few examples?", value=est.value)

    def pessimistic(e: Estimate, higher_better: bool) -> float:
        if not use_bound or e.lower is None or e.upper is None:
            return float(e.value)
        return float(e.lower if higher_better else e.upper)

    what = "the lower bound of its CI" if use_bound and higher else (
        "the upper bound of its CI" if use_bound else "its point estimate")
    fmt = format_short
    if check.margin is not None:
        lo, hi = float(est.value), float(est.value)
        if use_bound and est.lower is not None and est.upper is not None:
            lo, hi = float(est.lower), float(est.upper)
        ok = -check.margin <= lo and hi <= check.margin
        span = f"CI [{fmt(lo)}, {fmt(hi)}]" if use_bound else f"value {fmt(est.value)}"
        reason = (f"{check.metric}: {span} {'lies' if ok else 'does not lie'} within ±{fmt(check.margin)}")
        return CheckResult(check.metric, "pass" if ok else "fail", reason, est.value, hi if abs(hi) > abs(lo) else lo,
                           check.margin)
    if check.threshold is not None:
        b = pessimistic(est, higher)
        ok = b >= check.threshold if higher else b <= check.threshold
        if not ok:
            return CheckResult(check.metric, "fail",
                               f"{check.metric} = {fmt(est.value)}: {what} is {fmt(b)}, "
                               f"{'below' if higher else 'above'} the threshold {fmt(check.threshold)}",
                               est.value, b, check.threshold)
    changed = _judge_change(check, est, report, higher, pessimistic)
    if changed is not None:
        return changed
    b = pessimistic(est, higher)
    return CheckResult(check.metric, "pass", f"{check.metric} = {fmt(est.value)} passes ({what}: {fmt(b)})",
                       est.value, b, check.threshold)


#: report keys not measured on the examples (timings, sizes): no minimum sample size
_NOT_PER_EXAMPLE = ("speedup", "size_ratio", "throughput", "latency")


def _too_few_examples(check: Check, est: Estimate, report: _Judged, higher: bool) -> CheckResult | None:
    """A failing (not judged) result when the report has fewer examples than the check can resolve.

    The number needed is the smallest ``n`` at which the most favourable sample (all agree, no
    flip) would give an interval that passes, from the metric's interval family
    (:func:`~mlflow_trusteq.metrics.min_examples`). Applies to the core metrics (the sections count
    their own examples), in both ``decide_on`` modes: a point estimate on 5 examples is no evidence.
    """
    key = parse_key(check.metric)
    if key.section is not None or key.metric in _NOT_PER_EXAMPLE:
        return None
    from .metrics import interval_kind, min_examples

    judged = check.metric
    threshold, margin = check.threshold, check.margin
    if check.min_absolute_change is not None or check.min_relative_change is not None:
        judged = format_key(replace(key, role="diff"))
        threshold = -(check.min_absolute_change if check.min_absolute_change is not None else 0.0)
        threshold = threshold if not higher else -threshold
    confidence = est.confidence if est.confidence is not None else 0.95
    need = min_examples(interval_kind(judged), threshold=threshold, margin=margin, higher_is_better=higher,
                        confidence=confidence)
    n = int(report.n_examples)
    if n >= need:
        return None
    return CheckResult(check.metric, "fail",
                       f"{check.metric}: not judged: {n} example(s) cannot resolve this check; at least {need} are "
                       f"needed (the most favourable sample of {n} would still not pass at "
                       f"{format_short(confidence * 100)} % confidence), so the candidate fails (fail closed)",
                       value=est.value)


def _judge_change(check: Check, est: Estimate, report: _Judged, higher: bool,
                  pessimistic: Callable[[Estimate, bool], float]) -> CheckResult | None:
    """The ``min_absolute_change``/``min_relative_change`` rules: a failing result, or ``None``."""
    use_bound = check.decide_on == "bound"
    fmt = format_short
    for kind in ("min_absolute_change", "min_relative_change"):
        limit = getattr(check, kind)
        if limit is None:
            continue
        key = parse_key(check.metric)
        parent_key, diff_key = (format_key(replace(key, role=r)) for r in ("parent", "diff"))
        parent = report.metrics.get(parent_key)
        diff = report.metrics.get(diff_key)
        if parent is None or diff is None:
            return _missing(Check(parent_key, required=True), report)
        # the paired CI of the difference, signed so that "better" is positive
        d = pessimistic(diff, higher)
        gain = d if higher else -d
        if kind == "min_relative_change":
            if parent.value == 0:
                return CheckResult(check.metric, "fail", f"{check.metric}: relative change undefined "
                                   "(the parent's value is 0)", est.value)
            gain = gain / abs(parent.value)
        ok = gain >= limit
        if not ok:
            unit = "relative" if kind == "min_relative_change" else "absolute"
            return CheckResult(check.metric, "fail",
                               f"{check.metric}: {unit} change against the parent is {fmt(gain)} "
                               f"({'pessimistic CI bound' if use_bound else 'point'}), less than the required "
                               f"{fmt(limit)}", est.value, gain, limit)
    return None


# ---------------------------------------------------------------------------------------------
# Checks on slices (mlflow_trusteq.slices)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _SliceView:
    """One slice as a check reads it: its estimates (at the family's level), its size, the report's skips."""

    metrics: Mapping[str, Estimate]
    n_examples: int
    skipped: Mapping[str, str]


@dataclass(frozen=True)
class _SliceOutcome:
    """One check on one slice: ``pass``, ``fail`` or ``not judged`` (too few rows), and the judged interval."""

    stats: SliceStats
    status: str
    estimate: Estimate | None
    result: CheckResult


def _judge_slices(check: Check, report: TrustReport) -> tuple[CheckResult, dict[str, Any]]:
    """The check on every slice it names, as one result (worst slices in its reason) and the per-slice detail.

    Each slice is judged like the aggregate (same rule, same ``decide_on``) on its interval at the
    family's Bonferroni level (:attr:`SliceResult.family_confidence`); a slice with fewer rows than
    the check can resolve at that level is *not judged*: listed, not failing the verdict by itself.
    """
    key = f"slices/each/{check.metric}"
    result = report.slices()
    if result is None:
        why = report.skipped.get("slices") or "the report holds no slices"
        return CheckResult(key, "fail", f"{key}: could not be judged ({why}); the policy judges {check.metric} on "
                           "every slice, so the candidate fails (fail closed)"), {}
    from .slices import _expand

    wanted = result.specs if check.slices == "all" else _expand(check.slices or (), report.kind)
    unknown = [s for s in wanted if s not in result.specs]
    if unknown:
        return CheckResult(key, "fail", f"{key}: slice spec(s) {unknown} were not measured (measured: "
                           f"{list(result.specs)}); the candidate fails (fail closed)"), {}
    outcomes = [_judge_on_slice(check, s, report, result) for s in result.slices if s.spec in wanted]
    return _slices_result(check, key, outcomes, result), _slices_detail(outcomes, result)


def _judge_on_slice(check: Check, stats: SliceStats, report: TrustReport, result: SliceResult) -> _SliceOutcome:
    inner = replace(check, slices=None)
    point = check.decide_on == "point"  # a point estimate needs no interval, so no correction either
    view = _SliceView(stats.estimates if point else stats.family, stats.n, report.skipped)
    est = view.metrics.get(check.metric)
    if est is not None and est.value is not None and math.isfinite(est.value):
        too_few = _too_few_examples(inner, est, view, _higher(check))
        if too_few is not None:
            return _SliceOutcome(stats, "not judged", est, too_few)
    judged = _judge_one(inner, view)
    return _SliceOutcome(stats, judged.status, est, judged)


def _slice_words(check: Check, o: _SliceOutcome, correction: str) -> str:
    """``label_loyalty on slice parent_class=negative: 0.81 [0.74, 0.87] < 0.95 (Bonferroni over 6 slices)``."""
    e, fmt = o.estimate, format_short
    if e is None or o.result.bound is None:
        return f"{check.metric} on slice {o.stats.name} (n={o.stats.n}): {o.result.reason}"
    span = f" [{fmt(e.lower)}, {fmt(e.upper)}]" if e.lower is not None and e.upper is not None else ""
    if check.threshold is not None and o.result.threshold == check.threshold:
        rule = f"{'<' if _higher(check) else '>'} {fmt(check.threshold)}"
    elif check.margin is not None:
        rule = f"outside ±{fmt(check.margin)}"
    else:
        rule = f"({o.result.reason})"
    return f"{check.metric} on slice {o.stats.name} (n={o.stats.n}): {fmt(e.value)}{span} {rule} ({correction})"


def _slices_result(check: Check, key: str, outcomes: list[_SliceOutcome], result: SliceResult) -> CheckResult:
    correction = f"Bonferroni over {result.m} slices" if check.decide_on == "bound" else "point estimates"
    failed = sorted((o for o in outcomes if o.status == "fail"), key=lambda o: _badness(check, o))
    judged = [o for o in outcomes if o.status != "not judged"]
    small = [o for o in outcomes if o.status == "not judged"]
    tail = ""
    if small:
        names = ", ".join(f"{o.stats.name} (n={o.stats.n})" for o in small[:6]) + (" ..." if len(small) > 6 else "")
        tail = f"; {len(small)} slice(s) not judged, too few rows at this level: {names}"
    if failed:
        worst = "; ".join(_slice_words(check, o, correction) for o in failed[:3])
        more = f"; and {len(failed) - 3} more failing slice(s)" if len(failed) > 3 else ""
        head = f"{len(failed)} of {len(judged)} judged slice(s) fail: "
        top = failed[0]
        return CheckResult(key, "fail", head + worst + more + tail, top.estimate.value if top.estimate else None,
                           top.result.bound, check.threshold)
    if not judged:
        return CheckResult(key, "skipped", f"{key}: no slice could be judged{tail}", None, None, check.threshold)
    top = min(judged, key=lambda o: _badness(check, o))
    bound = "" if top.result.bound is None else f", bound {format_short(top.result.bound)}"
    return CheckResult(key, "pass", f"{key}: passes on all {len(judged)} judged slice(s) ({correction}; worst: "
                       f"{top.stats.name}{bound}){tail}",
                       top.estimate.value if top.estimate else None, top.result.bound, check.threshold)


def _badness(check: Check, o: _SliceOutcome) -> float:
    """Sort key: the worst judged bound first (lowest when higher is better; farthest from 0 for a margin)."""
    b = o.result.bound
    if b is None:
        return -math.inf
    if check.margin is not None:
        return -abs(b)
    return b if _higher(check) else -b


def _higher(check: Check) -> bool:
    """Whether higher is better for the check's metric (its own ``greater_is_better`` first)."""
    if check.greater_is_better is not None:
        return bool(check.greater_is_better)
    return metric_info(check.metric).higher_is_better


def _slices_detail(outcomes: list[_SliceOutcome], result: SliceResult) -> dict[str, Any]:
    """The per-slice outcomes recorded in :attr:`Verdict.extra` (``extra["slices"][<check key>]``)."""
    return {"correction": result.correction, "m": result.m, "family_confidence": result.family_confidence,
            "slices": [{"slice": o.stats.name, "spec": o.stats.spec, "n": o.stats.n, "status": o.status,
                        "value": o.estimate.value if o.estimate else None,
                        "lower": o.estimate.lower if o.estimate else None,
                        "upper": o.estimate.upper if o.estimate else None, "bound": o.result.bound}
                       for o in outcomes]}
