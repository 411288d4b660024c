"""The same black-box attack on parent and candidate: search, budget, metrics, result.

The search is TextFooler's greedy word-importance search (TextAttack's
``GreedyWordSwapWIR(wir_method="delete")``), run once per model and example:

1. **Importance.** One batched query of the original text and of every text with one eligible
   word deleted. The importance of word :math:`w_i` for the gold class :math:`y` is

   .. math:: I_i = p_y(x) - p_y(x_{\\setminus w_i}).

2. **Greedy swap.** Most important first, all candidate replacements of that word (synonyms or
   character edits) go to the model in one batch. If some flip the prediction the attack
   succeeds with the one of lowest :math:`p_y`; otherwise the replacement of lowest :math:`p_y`
   is kept when it lowers :math:`p_y`, and the search moves to the next word.
3. **Stop** when the label flips, the words run out, ``floor(max_words_changed * n_words)``
   words have changed, or the **query budget** is spent. A query is one text scored by the
   model (the original included, as TextAttack counts); a batch that would overrun the budget is
   cut to the queries left, so the budget is never exceeded.

Metrics (per recipe, over the sampled examples, all classified correctly by both models;
intervals are percentile bootstraps over examples, :func:`~mlflow_trusteq.metrics.bootstrap.mean_ci`):

- ``after_attack_accuracy`` = share of attacked examples still classified correctly;
- ``attack_success_rate`` = 1 - after-attack accuracy on these examples;
- ``mean_queries``, ``median_queries`` = queries per attacked example;
- ``words_changed`` = mean fraction of words changed, over successful attacks;
- ``diff/after_attack_accuracy`` = candidate minus parent, paired (same examples resampled);
- ``transfer_rate`` = share of the adversarial texts found against the parent that the
  candidate also misclassifies; ``reverse/transfer_rate`` the other way round;
- ``own/<parent|candidate>/accuracy`` and ``own/<...>/after_attack_accuracy``: the "each its own
  correct" view over ``n_examples`` rows drawn from all records (TextAttack's accuracy under
  attack: a row the model gets wrong counts as wrong), with ``own/diff/after_attack_accuracy``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError, LabelMismatchError, ModelAdapterError
from .._types import Estimate, to_jsonable
from ..adapters._base import ProbaModel
from ..adapters.labels import encode_targets
from ..metrics.bootstrap import bootstrap_ci, mean_ci
from ._words import Tokens, tokenize
from ._swap_recipes import RECIPES, Recipe, make_recipe

logger = logging.getLogger(__name__)

__all__ = ["RobustnessConfig", "RobustnessResult", "AttackOutcome", "attack_text", "measure_robustness",
           "QueryBudget"]

# the base metric names (after_attack_accuracy, ...) are registered with their directions in _types.py


@dataclass(frozen=True)
class RobustnessConfig:
    """Settings of the robustness section; every one of them is logged with the result.

    Parameters
    ----------
    recipes : tuple of str
        ``"word"`` (TextFooler-style WordNet synonym swap) and/or ``"char"`` (DeepWordBug-style).
    n_examples : int
        Examples attacked, sampled with ``random_state`` from those both models classify correctly.
    query_budget : int
        Most model queries (texts scored) per example and model, the original text included.
    max_words_changed : float
        Largest fraction of the words of the attacked field that may change.
    attack_field : str, optional
        Column attacked for text pairs; default the last text column (the hypothesis).
    random_state : int
        Seed of the example sample, the character edits and the bootstrap.
    progress : bool
        Show tqdm progress bars.
    own_view : bool
        Also report the "each its own correct" view (``<recipe>/own/...``): ``n_examples`` rows
        drawn from *all* records; each model is attacked on those it classifies correctly and
        after-attack accuracy counts the others as wrong (TextAttack's "accuracy under attack", the
        number of the loyalty study). Cheap: the rows both models get right are the main attacks.
    """

    recipes: tuple[str, ...] = ("word", "char")
    n_examples: int = 100
    query_budget: int = 200
    max_words_changed: float = 0.3
    attack_field: str | None = None
    random_state: int = 0
    progress: bool = True
    own_view: bool = True

    def __post_init__(self) -> None:
        recipes = (self.recipes,) if isinstance(self.recipes, str) else tuple(self.recipes)
        object.__setattr__(self, "recipes", recipes)
        if not recipes:
            raise InvalidInputError("Expected at least one attack recipe, got ()")
        for r in recipes:
            if r not in RECIPES:
                raise InvalidInputError(f"Unknown attack recipe {r!r}; expected one of {RECIPES}")
        if len(set(recipes)) != len(recipes):
            raise InvalidInputError(f"Duplicate attack recipes in {recipes!r}")
        if not isinstance(self.n_examples, (int, np.integer)) or self.n_examples < 1:
            raise InvalidInputError(f"Expected `n_examples` >= 1, got {self.n_examples!r}")
        if not isinstance(self.query_budget, (int, np.integer)) or self.query_budget < 1:
            raise InvalidInputError(f"Expected `query_budget` >= 1, got {self.query_budget!r}")
        if not 0.0 < float(self.max_words_changed) <= 1.0:
            raise InvalidInputError(f"Expected 0 < `max_words_changed` <= 1, got {self.max_words_changed!r}")


class QueryBudget:
    """A model behind a query counter: at most ``budget`` rows are ever scored.

    ``query(frame)`` scores the first ``min(len(frame), remaining)`` rows in one
    ``predict_proba`` call and returns their probabilities (possibly fewer rows than asked).
    """

    def __init__(self, model: ProbaModel, budget: int) -> None:
        self.model = model
        self.budget = int(budget)
        self.used = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def query(self, frame: pd.DataFrame) -> np.ndarray:
        n = min(len(frame), self.remaining)
        k = len(self.model.labels)
        if n <= 0:
            return np.empty((0, k))
        part = frame.iloc[:n].reset_index(drop=True)
        proba = _checked_proba(self.model, part)
        self.used += n
        return proba


def _checked_proba(model: ProbaModel, frame: pd.DataFrame) -> np.ndarray:
    proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
    k = len(model.labels)
    if proba.shape != (len(frame), k):
        raise ModelAdapterError(f"model {getattr(model, 'name', model)!r} returned probabilities of shape "
                                f"{proba.shape} for {len(frame)} rows and {k} labels")
    if not np.all(np.isfinite(proba)):
        raise ModelAdapterError(f"model {getattr(model, 'name', model)!r} returned non-finite probabilities")
    return proba


@dataclass(frozen=True)
class AttackOutcome:
    """One attack on one example by one model.

    ``status`` is ``"success"`` (label flipped), ``"failed"`` (budget, words or allowed changes
    ran out) or ``"skipped"`` (the model already misclassified the original).
    """

    status: str
    original: str
    perturbed: str
    queries: int
    words_changed: float
    n_words: int
    proba_before: tuple[float, ...]
    proba_after: tuple[float, ...]


def _frame(base: pd.Series, field: str, texts: Sequence[str]) -> pd.DataFrame:
    cols = {c: [base[c]] * len(texts) for c in base.index}
    cols[field] = list(texts)
    return pd.DataFrame(cols, columns=list(base.index))


def attack_text(model: ProbaModel, record: pd.Series, label: int, *, recipe: Recipe | str = "word",
                query_budget: int = 200, max_words_changed: float = 0.3, attack_field: str | None = None,
                example_key: int = 0, random_state: int = 0) -> AttackOutcome:
    """Attack one example (greedy word-importance search, see the module docstring).

    Parameters
    ----------
    model : ProbaModel
        Scored through a :class:`QueryBudget` of ``query_budget`` rows.
    record : pandas.Series
        The example's feature columns (one text column, or two for a pair).
    label : int
        Index of the gold label in ``model.labels``.
    recipe : Recipe or str
        ``"word"``, ``"char"`` or a :class:`~mlflow_trusteq.attack.Recipe`.
    attack_field : str, optional
        Column to perturb; the last one when None. The other columns are never changed.
    example_key : int
        Identifies the example in the seeds of random edits (same key -> same edits).
    """
    if isinstance(recipe, str):
        recipe = make_recipe(recipe, random_state=random_state)
    field_name, text = _attacked_text(record, attack_field)
    budget = QueryBudget(model, query_budget)
    toks = tokenize(text)
    n_words = len(toks.words)
    max_changes = math.floor(max_words_changed * n_words + 1e-9)

    eligible = [i for i in toks.words if recipe.eligible(toks.tokens[i])]
    cands = {i: recipe.candidates(toks.tokens[i], (example_key, i)) for i in eligible}
    eligible = [i for i in eligible if cands[i]]

    probe = [text] + [toks.deleted(i) for i in eligible]
    proba = budget.query(_frame(record, field_name, probe))
    p0 = proba[0]
    before = tuple(float(x) for x in p0)
    if int(np.argmax(p0)) != label:
        return AttackOutcome("skipped", text, text, budget.used, 0.0, n_words, before, before)
    ranked = eligible[: len(proba) - 1]
    importance = p0[label] - proba[1:, label]
    order = [ranked[j] for j in np.argsort(-importance, kind="stable")]
    swap = _greedy_swap(budget, record, field_name, label, toks, p0, order, cands, max_changes)
    return AttackOutcome(swap.status, text, swap.tokens.text(), budget.used,
                         swap.changed / n_words if n_words else 0.0, n_words, before,
                         tuple(float(x) for x in swap.proba))


def _attacked_text(record: pd.Series, attack_field: str | None) -> tuple[str, str]:
    """The attacked column of ``record`` (default the last one) and its text."""
    if not isinstance(record, pd.Series):
        raise InvalidInputError(
            f"Expected `record` to be a pandas Series of feature columns, got {type(record).__name__}")
    field_name = attack_field if attack_field is not None else record.index[-1]
    if field_name not in record.index:
        raise InvalidInputError(
            f"attack field {field_name!r} is not a column of the record; columns: {list(record.index)}")
    text = record[field_name]
    if not isinstance(text, str):
        raise InvalidInputError(f"attack field {field_name!r} must hold text, got {type(text).__name__}: {text!r}")
    return field_name, text


@dataclass(frozen=True)
class _Swap:
    """Where the greedy search stopped: status, the current tokens, their probabilities, words changed."""

    status: str
    tokens: Tokens
    proba: np.ndarray
    changed: int


def _greedy_swap(budget: QueryBudget, record: pd.Series, field_name: str, label: int, toks: Tokens,
                 p0: np.ndarray, order: list[int], cands: dict[int, list[str]], max_changes: int) -> _Swap:
    """Most important word first: keep the replacement that flips the label, or the one that lowers p_y most."""
    current, cur_p, changed = toks, p0, 0
    for pos in order:
        if changed >= max_changes or budget.remaining <= 0:
            break
        texts = [current.replaced(pos, c) for c in cands[pos]]
        proba = budget.query(_frame(record, field_name, texts))
        if len(proba) == 0:
            break
        py = proba[:, label]
        flipped = np.flatnonzero(np.argmax(proba, axis=1) != label)
        if flipped.size:
            best = int(flipped[np.argmin(py[flipped])])
            return _Swap("success", current.with_word(pos, cands[pos][best]), proba[best], changed + 1)
        best = int(np.argmin(py))
        if py[best] < cur_p[label]:
            current = current.with_word(pos, cands[pos][best])
            cur_p = proba[best]
            changed += 1
    return _Swap("failed", current, cur_p, changed)


@dataclass(frozen=True)
class RobustnessResult:
    """Outcome of :func:`measure_robustness`: settings, per-example rows, estimates.

    ``rows`` hold one dict per recipe and attacked example (see :meth:`table`); ``metrics`` the
    estimates keyed relative to the section (``"word/parent/after_attack_accuracy"``...).
    """

    settings: dict[str, Any]
    rows: tuple[dict[str, Any], ...]
    metrics: dict[str, Estimate] = field(default_factory=dict)

    def estimates(self) -> dict[str, Estimate]:
        """``{"<recipe>/<parent|candidate|diff>/<metric>": Estimate, "<recipe>/transfer_rate": ...}``."""
        return dict(self.metrics)

    def table(self) -> pd.DataFrame:
        """The attacked examples: original and perturbed texts, gold label, both models before/after, queries."""
        return pd.DataFrame(list(self.rows))

    def to_dict(self) -> dict[str, Any]:
        return {"settings": to_jsonable(self.settings), "rows": [to_jsonable(r) for r in self.rows],
                "metrics": {k: e.to_dict() for k, e in self.metrics.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RobustnessResult:
        def restore(r: dict[str, Any]) -> dict[str, Any]:
            return {k: (float("nan") if v is None and k.endswith(("confidence_after", "words_changed")) else v)
                    for k, v in r.items()}

        return cls(settings=dict(d["settings"]), rows=tuple(restore(r) for r in d["rows"]),
                   metrics={k: Estimate.from_dict(v) for k, v in d["metrics"].items()})

    def html(self, max_rows: int = 20) -> str:
        """An HTML fragment: the metrics and up to ``max_rows`` attacked examples per recipe.

        Rendered by :func:`mlflow_trusteq.report.robustness_fragment`.
        """
        from ..report._robustness import robustness_fragment

        return robustness_fragment(self, max_rows=max_rows)


def measure_robustness(parent: ProbaModel, candidate: ProbaModel, records: pd.DataFrame, targets: np.ndarray, *,
                       config: RobustnessConfig = RobustnessConfig()) -> RobustnessResult:
    """Run the same attacks, budget, examples and seed against parent and candidate.

    Parameters
    ----------
    parent, candidate : ProbaModel
        Text classifiers with the same ``labels``.
    records : pandas.DataFrame
        Feature columns only: one text column, or two for pairs.
    targets : array of shape (n,)
        Gold labels, as label names or as indices into ``labels``.
    config : RobustnessConfig

    Returns
    -------
    RobustnessResult
        Metrics keyed ``"<recipe>/<parent|candidate|diff>/<metric>"``, ``"<recipe>/transfer_rate"``
        and ``"<recipe>/reverse/transfer_rate"``; see the module docstring for definitions.

    Raises
    ------
    InvalidInputError
        Bad records/targets, or no example that both models classify correctly.
    MissingDependencyError
        The ``"word"`` recipe without a local WordNet (with the install command).
    """
    job = _prepare(parent, candidate, records, targets, config)
    # build recipes first: a missing WordNet fails before any model is queried
    recipes = {name: make_recipe(name, random_state=config.random_state) for name in config.recipes}
    sample = _draw_sample(job)
    rows: list[dict[str, Any]] = []
    metrics: dict[str, Estimate] = {}
    skipped: dict[str, int] = {}
    for name, recipe in recipes.items():
        r_rows, r_metrics, r_skipped = _run_recipe(job, sample, name, recipe)
        rows.extend(r_rows)
        metrics.update(r_metrics)
        skipped.update(r_skipped)
    settings = _settings(job, recipes, sample, skipped)
    return RobustnessResult(settings=settings, rows=tuple(rows), metrics=metrics)


# ---- steps of measure_robustness -------------------------------------------------------------------
_ROLES = ("parent", "candidate")


@dataclass(frozen=True)
class _Job:
    """What every attack of one call shares: the models by role, the data, the attacked field, the settings."""

    models: dict[str, ProbaModel]
    records: pd.DataFrame
    y: np.ndarray
    labels: tuple[str, ...]
    field: str
    config: RobustnessConfig

    def attack(self, role: str, i: int, recipe: Recipe) -> AttackOutcome:
        """Attack row ``i`` with the model of ``role``."""
        c = self.config
        return attack_text(self.models[role], self.records.iloc[i], int(self.y[i]), recipe=recipe,
                           query_budget=c.query_budget, max_words_changed=c.max_words_changed,
                           attack_field=self.field, example_key=int(i), random_state=c.random_state)


@dataclass(frozen=True)
class _Sample:
    """The attacked rows: ``chosen`` (both models right), ``own_pool`` (the "own" view), clean predictions."""

    chosen: np.ndarray
    own_pool: np.ndarray
    n_both: int
    correct: dict[str, np.ndarray]
    clean: dict[str, np.ndarray]


def _prepare(parent: ProbaModel, candidate: ProbaModel, records: pd.DataFrame, targets: np.ndarray,
             config: RobustnessConfig) -> _Job:
    """Validate the arguments; the labels, the gold class indices and the attacked field."""
    if not isinstance(records, pd.DataFrame):
        raise InvalidInputError(
            f"Expected `records` to be a pandas DataFrame of text columns, got {type(records).__name__}")
    if len(records) == 0:
        raise InvalidInputError("Expected at least one record, got an empty DataFrame")
    if tuple(parent.labels) != tuple(candidate.labels):
        raise LabelMismatchError(
            f"parent labels {tuple(parent.labels)!r} != candidate labels {tuple(candidate.labels)!r}")
    labels = tuple(parent.labels)
    y = encode_targets(targets, labels)
    if len(y) != len(records):
        raise InvalidInputError(f"`targets` has {len(y)} entries but `records` has {len(records)} rows")
    field_name = config.attack_field if config.attack_field is not None else records.columns[-1]
    if field_name not in records.columns:
        raise InvalidInputError(
            f"attack_field {field_name!r} is not a column of records; columns: {list(records.columns)}")
    if not all(isinstance(x, str) for x in records[field_name]):
        bad = next(x for x in records[field_name] if not isinstance(x, str))
        raise InvalidInputError(f"attack field {field_name!r} must hold text; found {bad!r}")
    return _Job({"parent": parent, "candidate": candidate}, records.reset_index(drop=True), y, labels,
                field_name, config)


def _draw_sample(job: _Job) -> _Sample:
    """Score the clean records; one seeded permutation gives the main sample and the "own" sample.

    The main sample is the permutation's first ``n_examples`` rows that both models get right; the
    "own" sample its first ``n_examples`` rows, so its both-correct rows are all in the main sample.
    """
    config = job.config
    clean = {role: _checked_proba(job.models[role], job.records) for role in _ROLES}
    correct = {role: clean[role].argmax(1) == job.y for role in _ROLES}
    both = np.flatnonzero(correct["parent"] & correct["candidate"])
    if both.size == 0:
        raise InvalidInputError("no example is classified correctly by both parent and candidate; nothing to attack")
    perm = np.random.default_rng(config.random_state).permutation(len(job.records))
    both_mask = np.zeros(len(job.records), dtype=bool)
    both_mask[both] = True
    chosen = np.sort(perm[both_mask[perm]][: config.n_examples])
    own_pool = np.sort(perm[: config.n_examples]) if config.own_view else np.empty(0, dtype=np.int64)
    logger.info("robustness: attacking %d of %d examples that both models classify correctly", chosen.size, both.size)
    return _Sample(chosen, own_pool, int(both.size), correct, clean)


def _run_recipe(job: _Job, sample: _Sample, name: str,
                recipe: Recipe) -> tuple[list[dict[str, Any]], dict[str, Estimate], dict[str, int]]:
    """One recipe: attack both models, the "own" view, transfer; the rows, the metrics, the skipped counts."""
    outcomes = {role: _attack_sample(job, sample, name, role, recipe) for role in _ROLES}
    skipped = {f"{name}/{role}": sum(o.status == "skipped" for o in outcomes[role]) for role in _ROLES}
    own = {role: _attack_own(job, sample, outcomes[role], name, role, recipe) for role in _ROLES}
    metrics = _own_metrics(sample, own, name, job.config.random_state)
    transfer = {src: _transfer(job, sample.chosen, outcomes[src], dst)
                for src, dst in (("parent", "candidate"), ("candidate", "parent"))}
    metrics.update(_attack_metrics(outcomes, {src: flags for src, (flags, _) in transfer.items()}, name,
                                   job.config.random_state))
    rows = _rows(job, sample, name, outcomes, own, transfer["parent"][1])
    return rows, metrics, skipped


def _attack_sample(job: _Job, sample: _Sample, name: str, role: str, recipe: Recipe) -> list[AttackOutcome]:
    """Attack every row of the main sample with one model."""
    from tqdm.auto import tqdm

    outs = [job.attack(role, i, recipe)
            for i in tqdm(sample.chosen, desc=f"attack {name} / {role}", disable=not job.config.progress, leave=False)]
    n_skip = sum(o.status == "skipped" for o in outs)
    if n_skip:
        logger.warning("robustness %s: %s misclassified %d sampled example(s) when scored alone (batch "
                       "effects?); they count as not flipped", name, role, n_skip)
    return outs


def _attack_own(job: _Job, sample: _Sample, main: list[AttackOutcome], name: str, role: str,
                recipe: Recipe) -> list[AttackOutcome]:
    """The "each its own correct" view: every row of the own sample that the model gets right is attacked
    (reusing the main attacks); a row it gets wrong counts as wrong (TextAttack's accuracy under attack)."""
    from tqdm.auto import tqdm

    done = dict(zip(sample.chosen.tolist(), main))
    outs = []
    for i in tqdm(sample.own_pool, desc=f"attack {name} / {role} (own)", disable=not job.config.progress,
                  leave=False):
        if int(i) in done:
            outs.append(done[int(i)])
        elif not sample.correct[role][i]:
            text = job.records.iloc[i][job.field]
            pb = tuple(float(x) for x in sample.clean[role][i])
            outs.append(AttackOutcome("skipped", text, text, 0, 0.0, len(tokenize(text).words), pb, pb))
        else:
            outs.append(job.attack(role, i, recipe))
    return outs


def _own_metrics(sample: _Sample, own: dict[str, list[AttackOutcome]], name: str, seed: int) -> dict[str, Estimate]:
    """Accuracy and after-attack accuracy of each model on the own sample, and their paired difference."""
    if not sample.own_pool.size:
        return {}
    out: dict[str, Estimate] = {}
    after = {}
    for role in _ROLES:
        acc = sample.correct[role][sample.own_pool].astype(float)
        after[role] = np.array([o.status == "failed" for o in own[role]], dtype=float)
        out[f"{name}/own/{role}/accuracy"] = mean_ci(acc, random_state=seed)
        out[f"{name}/own/{role}/after_attack_accuracy"] = mean_ci(after[role], random_state=seed)
    out[f"{name}/own/diff/after_attack_accuracy"] = mean_ci(after["candidate"] - after["parent"], random_state=seed)
    return out


def _transfer(job: _Job, chosen: np.ndarray, outs: list[AttackOutcome], dst: str) -> tuple[np.ndarray, np.ndarray]:
    """The adversarial texts found against one model scored by the other (outside the budgets).

    Returns per main-sample row the flag "misclassified by ``dst``" and ``dst``'s probabilities
    (NaN where the attack did not succeed).
    """
    hit = [j for j, o in enumerate(outs) if o.status == "success"]
    flags = np.full(chosen.size, np.nan)
    proba = np.full((chosen.size, len(job.labels)), np.nan)
    if hit:
        frame = pd.concat([_frame(job.records.iloc[chosen[j]], job.field, [outs[j].perturbed]) for j in hit],
                          ignore_index=True)
        pr = _checked_proba(job.models[dst], frame)
        proba[hit] = pr
        flags[hit] = (pr.argmax(1) != job.y[chosen[hit]]).astype(float)
    return flags, proba


def _attack_metrics(outcomes: dict[str, list[AttackOutcome]], transfer: dict[str, np.ndarray], name: str,
                    seed: int) -> dict[str, Estimate]:
    """Per model, their paired difference, and the transfer rates, on the main sample."""
    out: dict[str, Estimate] = {}
    per: dict[str, dict[str, np.ndarray]] = {}
    for role in _ROLES:
        outs = outcomes[role]
        success = np.array([o.status == "success" for o in outs], dtype=float)
        per[role] = {
            "after_attack_accuracy": 1.0 - success,
            "attack_success_rate": success,
            "mean_queries": np.array([o.queries for o in outs], dtype=float),
            "words_changed": np.array([o.words_changed if o.status == "success" else np.nan for o in outs]),
        }
        for m, v in per[role].items():
            out[f"{name}/{role}/{m}"] = mean_ci(v, random_state=seed)
        out[f"{name}/{role}/median_queries"] = bootstrap_ci(per[role]["mean_queries"], statistic="median",
                                                            random_state=seed)
    for m in ("after_attack_accuracy", "attack_success_rate", "mean_queries"):
        out[f"{name}/diff/{m}"] = mean_ci(per["candidate"][m] - per["parent"][m], random_state=seed)
    out[f"{name}/transfer_rate"] = mean_ci(transfer["parent"], random_state=seed)
    out[f"{name}/reverse/transfer_rate"] = mean_ci(transfer["candidate"], random_state=seed)
    return out


def _rows(job: _Job, sample: _Sample, name: str, outcomes: dict[str, list[AttackOutcome]],
          own: dict[str, list[AttackOutcome]], parent_transfer: np.ndarray) -> list[dict[str, Any]]:
    """One row per attacked example: the main sample, then the own-sample rows outside it."""
    rows = [_row(job, name, int(i), "both_correct", {r: outcomes[r][j] for r in _ROLES}, parent_transfer[j])
            for j, i in enumerate(sample.chosen)]
    chosen_set = set(sample.chosen.tolist())
    rows += [_row(job, name, int(i), "own_only", {r: own[r][j] for r in _ROLES}, None)
             for j, i in enumerate(sample.own_pool) if int(i) not in chosen_set]
    return rows


def _row(job: _Job, name: str, i: int, pool: str, outs: dict[str, AttackOutcome],
         transfer_proba: np.ndarray | None) -> dict[str, Any]:
    """The table row of one example: its other columns, gold label, and each model before and after."""
    record = job.records.iloc[i]
    row: dict[str, Any] = {"recipe": name, "index": i, "pool": pool}
    for c in job.records.columns:
        if c != job.field:
            row[c] = record[c]
    row["original"] = record[job.field]
    row["gold"] = job.labels[job.y[i]]
    for role in _ROLES:
        o = outs[role]
        pb, pa = np.array(o.proba_before), np.array(o.proba_after)
        row[f"{role}_perturbed"] = o.perturbed
        row[f"{role}_status"] = o.status
        row[f"{role}_pred_before"] = _label_at(job.labels, pb)
        row[f"{role}_confidence_before"] = float(pb.max())
        row[f"{role}_pred_after"] = _label_at(job.labels, pa)
        row[f"{role}_confidence_after"] = float(pa.max())
        row[f"{role}_queries"] = o.queries
        row[f"{role}_words_changed"] = o.words_changed
    tp = transfer_proba
    row["candidate_on_parent_adversarial"] = (None if tp is None or np.isnan(tp).any()
                                              else job.labels[int(tp.argmax())])
    return row


def _label_at(labels: tuple[str, ...], proba: np.ndarray) -> str:
    """The label of the largest probability."""
    return labels[int(proba.argmax())]


def _settings(job: _Job, recipes: dict[str, Recipe], sample: _Sample, skipped: dict[str, int]) -> dict[str, Any]:
    """Everything the numbers depend on, recorded with the result."""
    config = job.config
    return {
        "recipes": list(config.recipes),
        "recipe_settings": {n: r.settings() for n, r in recipes.items()},
        "query_budget": int(config.query_budget),
        "query_unit": "one text scored by the model, the original included",
        "max_words_changed": float(config.max_words_changed),
        "attack_field": str(job.field),
        "random_state": int(config.random_state),
        "n_examples": int(config.n_examples),
        "n_attacked": int(sample.chosen.size),
        "n_both_correct": sample.n_both,
        "n_records": int(len(job.records)),
        "example_pool": "classified correctly by both models",
        "skipped_in_sample": skipped,
        "own_view": bool(config.own_view),
        "n_own_sample": int(sample.own_pool.size),
        "parent_accuracy": float(np.mean(sample.correct["parent"])),
        "candidate_accuracy": float(np.mean(sample.correct["candidate"])),
        "labels": list(job.labels),
    }
