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

import html as _html
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError, LabelMismatchError, ModelAdapterError
from .._types import Estimate
from ..adapters._base import ProbaModel
from ..metrics.bootstrap import bootstrap_ci, mean_ci
from ._words import highlight_diff, tokenize
from .recipes import RECIPES, Recipe, make_recipe

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
        ``"word"``, ``"char"`` or a :class:`~mlflow_trusteq.attack.recipes.Recipe`.
    attack_field : str, optional
        Column to perturb; the last one when None. The other columns are never changed.
    example_key : int
        Identifies the example in the seeds of random edits (same key -> same edits).
    """
    if isinstance(recipe, str):
        recipe = make_recipe(recipe, random_state=random_state)
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

    current = toks
    cur_p = p0
    changed = 0
    status = "failed"
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
            current = current.with_word(pos, cands[pos][best])
            cur_p = proba[best]
            changed += 1
            status = "success"
            break
        best = int(np.argmin(py))
        if py[best] < cur_p[label]:
            current = current.with_word(pos, cands[pos][best])
            cur_p = proba[best]
            changed += 1
    return AttackOutcome(status, text, current.text(), budget.used, changed / n_words if n_words else 0.0,
                         n_words, before, tuple(float(x) for x in cur_p))


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
        def clean(v: Any) -> Any:
            if isinstance(v, float) and math.isnan(v):
                return None
            if isinstance(v, (np.integer,)):
                return int(v)
            if isinstance(v, (np.floating,)):
                return clean(float(v))
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return {"settings": clean(self.settings), "rows": [clean(r) for r in self.rows],
                "metrics": {k: e.to_dict() for k, e in self.metrics.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RobustnessResult:
        def restore(r: dict[str, Any]) -> dict[str, Any]:
            return {k: (float("nan") if v is None and k.endswith(("confidence_after", "words_changed")) else v)
                    for k, v in r.items()}

        return cls(settings=dict(d["settings"]), rows=tuple(restore(r) for r in d["rows"]),
                   metrics={k: Estimate.from_dict(v) for k, v in d["metrics"].items()})

    def html(self, max_rows: int = 20) -> str:
        """An HTML fragment for ``report.html``: the metrics and up to ``max_rows`` attacked examples per recipe."""
        esc = _html.escape
        s = {k: esc(str(self.settings.get(k))) for k in
             ("n_attacked", "query_budget", "max_words_changed", "attack_field", "random_state")}
        out = ['<section class="trusteq-robustness"><h2>Robustness</h2>',
               f"<p>Same black-box attack on parent and candidate: {s['n_attacked']} examples that both classify "
               f"correctly, query budget {s['query_budget']} per example and model, at most "
               f"{s['max_words_changed']} of the words changed, field {s['attack_field']}, "
               f"seed {s['random_state']}.</p>"]

        def fmt(e: Estimate | None) -> str:
            if e is None or e.value is None or (isinstance(e.value, float) and math.isnan(e.value)):
                return "–"
            if e.lower is None:
                return f"{e.value:.3g}"
            return f"{e.value:.3g} [{e.lower:.3g}, {e.upper:.3g}]"

        names = ["after_attack_accuracy", "attack_success_rate", "mean_queries", "median_queries", "words_changed"]
        table = pd.DataFrame(list(self.rows))
        for recipe in self.settings.get("recipes", []):
            rs = self.settings.get("recipe_settings", {}).get(recipe, {})
            out.append(f"<h3>{esc(recipe)}: {esc(str(rs.get('transformation', '')))}</h3>")
            out.append(f"<p>Word source: {esc(str(rs.get('word_source', '')))}</p>")
            out.append("<table><thead><tr><th>metric</th><th>parent</th><th>candidate</th><th>candidate − parent</th>"
                       "</tr></thead><tbody>")
            for m in names:
                out.append(f"<tr><td>{m}</td><td>{fmt(self.metrics.get(f'{recipe}/parent/{m}'))}</td>"
                           f"<td>{fmt(self.metrics.get(f'{recipe}/candidate/{m}'))}</td>"
                           f"<td>{fmt(self.metrics.get(f'{recipe}/diff/{m}'))}</td></tr>")
            out.append(f"<tr><td>own sample: accuracy</td><td>{fmt(self.metrics.get(f'{recipe}/own/parent/accuracy'))}"
                       f"</td><td>{fmt(self.metrics.get(f'{recipe}/own/candidate/accuracy'))}</td><td></td></tr>")
            out.append("<tr><td>own sample: after_attack_accuracy</td>"
                       f"<td>{fmt(self.metrics.get(f'{recipe}/own/parent/after_attack_accuracy'))}</td>"
                       f"<td>{fmt(self.metrics.get(f'{recipe}/own/candidate/after_attack_accuracy'))}</td>"
                       f"<td>{fmt(self.metrics.get(f'{recipe}/own/diff/after_attack_accuracy'))}</td></tr>")
            out.append(f"<tr><td>transfer_rate (parent → candidate)</td><td colspan=3>"
                       f"{fmt(self.metrics.get(f'{recipe}/transfer_rate'))}</td></tr>")
            out.append(f"<tr><td>transfer_rate (candidate → parent)</td><td colspan=3>"
                       f"{fmt(self.metrics.get(f'{recipe}/reverse/transfer_rate'))}</td></tr></tbody></table>")
            if table.empty:
                continue
            sub = table[table["recipe"] == recipe]
            sub = sub[(sub["parent_status"] == "success") | (sub["candidate_status"] == "success")].head(max_rows)
            if sub.empty:
                continue
            out.append('<table class="examples"><thead><tr><th>gold</th>'
                       "<th>original → attacked against the parent</th><th>parent</th>"
                       "<th>attacked against the candidate</th><th>candidate</th></tr></thead><tbody>")
            for _, r in sub.iterrows():
                o_p, a_p = highlight_diff(r["original"], r["parent_perturbed"])
                _, a_c = highlight_diff(r["original"], r["candidate_perturbed"])
                out.append(
                    f"<tr><td>{esc(str(r['gold']))}</td><td>{o_p}<br>{a_p}</td>"
                    f"<td>{esc(str(r['parent_pred_before']))} → {esc(str(r['parent_pred_after']))} "
                    f"({r['parent_queries']} q)</td><td>{a_c}</td>"
                    f"<td>{esc(str(r['candidate_pred_before']))} → {esc(str(r['candidate_pred_after']))} "
                    f"({r['candidate_queries']} q)</td></tr>")
            out.append("</tbody></table>")
        out.append("</section>")
        return "\n".join(out)


def _label_indices(targets: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    t = np.asarray(targets)
    if t.ndim != 1:
        raise InvalidInputError(f"Expected 1-D `targets`, got shape {t.shape}")
    names = [str(x) for x in t]
    lookup = {str(lab): i for i, lab in enumerate(labels)}
    if all(n in lookup for n in names):
        return np.array([lookup[n] for n in names], dtype=np.int64)
    if np.issubdtype(t.dtype, np.integer) or (t.dtype == object and all(isinstance(x, (int, np.integer)) for x in t)):
        idx = t.astype(np.int64)
        bad = idx[(idx < 0) | (idx >= len(labels))]
        if bad.size == 0:
            return idx
        raise InvalidInputError(f"target {int(bad[0])!r} is not a label index of {labels!r}")
    unknown = next(n for n in names if n not in lookup)
    raise InvalidInputError(f"target {unknown!r} is not one of the models' labels {labels!r}")


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
    from tqdm.auto import tqdm

    if not isinstance(records, pd.DataFrame):
        raise InvalidInputError(
            f"Expected `records` to be a pandas DataFrame of text columns, got {type(records).__name__}")
    if len(records) == 0:
        raise InvalidInputError("Expected at least one record, got an empty DataFrame")
    if tuple(parent.labels) != tuple(candidate.labels):
        raise LabelMismatchError(
            f"parent labels {tuple(parent.labels)!r} != candidate labels {tuple(candidate.labels)!r}")
    labels = tuple(parent.labels)
    y = _label_indices(targets, labels)
    if len(y) != len(records):
        raise InvalidInputError(f"`targets` has {len(y)} entries but `records` has {len(records)} rows")
    field_name = config.attack_field if config.attack_field is not None else records.columns[-1]
    if field_name not in records.columns:
        raise InvalidInputError(
            f"attack_field {field_name!r} is not a column of records; columns: {list(records.columns)}")
    if not all(isinstance(x, str) for x in records[field_name]):
        bad = next(x for x in records[field_name] if not isinstance(x, str))
        raise InvalidInputError(f"attack field {field_name!r} must hold text; found {bad!r}")
    # build recipes first: a missing WordNet fails before any model is queried
    recipes = {name: make_recipe(name, random_state=config.random_state) for name in config.recipes}

    records = records.reset_index(drop=True)
    p_clean = _checked_proba(parent, records)
    q_clean = _checked_proba(candidate, records)
    both = np.flatnonzero((p_clean.argmax(1) == y) & (q_clean.argmax(1) == y))
    if both.size == 0:
        raise InvalidInputError("no example is classified correctly by both parent and candidate; nothing to attack")
    # One seeded permutation of all rows: the main sample is its first n rows that both models get right;
    # the "own" sample is its first n rows, so its both-correct rows are all in the main sample.
    perm = np.random.default_rng(config.random_state).permutation(len(records))
    both_mask = np.zeros(len(records), dtype=bool)
    both_mask[both] = True
    chosen = np.sort(perm[both_mask[perm]][: config.n_examples])
    own_pool = np.sort(perm[: config.n_examples]) if config.own_view else np.empty(0, dtype=np.int64)
    correct = {"parent": p_clean.argmax(1) == y, "candidate": q_clean.argmax(1) == y}
    clean = {"parent": p_clean, "candidate": q_clean}
    logger.info("robustness: attacking %d of %d examples that both models classify correctly", chosen.size, both.size)

    rows: list[dict[str, Any]] = []
    metrics: dict[str, Estimate] = {}
    skipped: dict[str, int] = {}
    seed = config.random_state
    for name, recipe in recipes.items():
        outcomes: dict[str, list[AttackOutcome]] = {}
        for role, model in (("parent", parent), ("candidate", candidate)):
            outs = []
            for i in tqdm(chosen, desc=f"attack {name} / {role}", disable=not config.progress, leave=False):
                outs.append(attack_text(model, records.iloc[i], int(y[i]), recipe=recipe,
                                        query_budget=config.query_budget, max_words_changed=config.max_words_changed,
                                        attack_field=field_name, example_key=int(i), random_state=seed))
            outcomes[role] = outs
            n_skip = sum(o.status == "skipped" for o in outs)
            if n_skip:
                logger.warning("robustness %s: %s misclassified %d sampled example(s) when scored alone (batch "
                               "effects?); they count as not flipped", name, role, n_skip)
            skipped[f"{name}/{role}"] = n_skip
        # the "each its own correct" view: every row of the own sample that the model gets right is attacked
        # (reusing the main attacks), a row it gets wrong counts as wrong; TextAttack's accuracy under attack.
        own: dict[str, list[AttackOutcome]] = {}
        for role, model in (("parent", parent), ("candidate", candidate)):
            done = dict(zip(chosen.tolist(), outcomes[role]))
            outs = []
            for i in tqdm(own_pool, desc=f"attack {name} / {role} (own)", disable=not config.progress, leave=False):
                text = records.iloc[i][field_name]
                if int(i) in done:
                    outs.append(done[int(i)])
                elif not correct[role][i]:
                    pb = tuple(float(x) for x in clean[role][i])
                    outs.append(AttackOutcome("skipped", text, text, 0, 0.0, len(tokenize(text).words), pb, pb))
                else:
                    outs.append(attack_text(model, records.iloc[i], int(y[i]), recipe=recipe,
                                            query_budget=config.query_budget,
                                            max_words_changed=config.max_words_changed,
                                            attack_field=field_name, example_key=int(i), random_state=seed))
            own[role] = outs
        if own_pool.size:
            own_after = {}
            for role in ("parent", "candidate"):
                acc = correct[role][own_pool].astype(float)
                own_after[role] = np.array([o.status == "failed" for o in own[role]], dtype=float)
                metrics[f"{name}/own/{role}/accuracy"] = mean_ci(acc, random_state=seed)
                metrics[f"{name}/own/{role}/after_attack_accuracy"] = mean_ci(own_after[role], random_state=seed)
            metrics[f"{name}/own/diff/after_attack_accuracy"] = mean_ci(
                own_after["candidate"] - own_after["parent"], random_state=seed)
        # transfer: adversarial texts found against one model, scored by the other (outside the budgets)
        transfer: dict[str, np.ndarray] = {}
        transfer_p: dict[str, np.ndarray] = {}
        for src, dst_model in (("parent", candidate), ("candidate", parent)):
            hit = [j for j, o in enumerate(outcomes[src]) if o.status == "success"]
            flags = np.full(chosen.size, np.nan)
            tp = np.full((chosen.size, len(labels)), np.nan)
            if hit:
                frame = pd.concat([_frame(records.iloc[chosen[j]], field_name, [outcomes[src][j].perturbed])
                                   for j in hit], ignore_index=True)
                pr = _checked_proba(dst_model, frame)
                tp[hit] = pr
                flags[hit] = (pr.argmax(1) != y[chosen[hit]]).astype(float)
            transfer[src] = flags
            transfer_p[src] = tp

        per: dict[str, dict[str, np.ndarray]] = {}
        for role in ("parent", "candidate"):
            outs = outcomes[role]
            success = np.array([o.status == "success" for o in outs], dtype=float)
            per[role] = {
                "after_attack_accuracy": 1.0 - success,
                "attack_success_rate": success,
                "mean_queries": np.array([o.queries for o in outs], dtype=float),
                "words_changed": np.array([o.words_changed if o.status == "success" else np.nan for o in outs]),
            }
            for m, v in per[role].items():
                metrics[f"{name}/{role}/{m}"] = mean_ci(v, random_state=seed)
            metrics[f"{name}/{role}/median_queries"] = bootstrap_ci(per[role]["mean_queries"], statistic="median",
                                                                        random_state=seed)
        for m in ("after_attack_accuracy", "attack_success_rate", "mean_queries"):
            metrics[f"{name}/diff/{m}"] = mean_ci(per["candidate"][m] - per["parent"][m], random_state=seed)
        metrics[f"{name}/transfer_rate"] = mean_ci(transfer["parent"], random_state=seed)
        metrics[f"{name}/reverse/transfer_rate"] = mean_ci(transfer["candidate"], random_state=seed)

        chosen_set = set(chosen.tolist())
        extra = [(j, int(i)) for j, i in enumerate(own_pool) if int(i) not in chosen_set]
        for j, i in [(j, int(i)) for j, i in enumerate(chosen)] + [(-1 - j, i) for j, i in extra]:
            pool = "both_correct" if j >= 0 else "own_only"
            row: dict[str, Any] = {"recipe": name, "index": int(i), "pool": pool}
            for c in records.columns:
                if c != field_name:
                    row[c] = records.iloc[i][c]
            row["original"] = records.iloc[i][field_name]
            row["gold"] = labels[y[i]]
            for role in ("parent", "candidate"):
                o = outcomes[role][j] if j >= 0 else own[role][-1 - j]
                pb, pa = np.array(o.proba_before), np.array(o.proba_after)
                row[f"{role}_perturbed"] = o.perturbed
                row[f"{role}_status"] = o.status
                row[f"{role}_pred_before"] = labels[int(pb.argmax())]
                row[f"{role}_confidence_before"] = float(pb.max())
                row[f"{role}_pred_after"] = labels[int(pa.argmax())]
                row[f"{role}_confidence_after"] = float(pa.max())
                row[f"{role}_queries"] = o.queries
                row[f"{role}_words_changed"] = o.words_changed
            tp = transfer_p["parent"][j] if j >= 0 else np.full(len(labels), np.nan)
            row["candidate_on_parent_adversarial"] = None if np.isnan(tp).any() else labels[int(tp.argmax())]
            rows.append(row)

    settings: dict[str, Any] = {
        "recipes": list(config.recipes),
        "recipe_settings": {n: r.settings() for n, r in recipes.items()},
        "query_budget": int(config.query_budget),
        "query_unit": "one text scored by the model, the original included",
        "max_words_changed": float(config.max_words_changed),
        "attack_field": str(field_name),
        "random_state": int(config.random_state),
        "n_examples": int(config.n_examples),
        "n_attacked": int(chosen.size),
        "n_both_correct": int(both.size),
        "n_records": int(len(records)),
        "example_pool": "classified correctly by both models",
        "skipped_in_sample": skipped,
        "own_view": bool(config.own_view),
        "n_own_sample": int(own_pool.size),
        "parent_accuracy": float(np.mean(p_clean.argmax(1) == y)),
        "candidate_accuracy": float(np.mean(q_clean.argmax(1) == y)),
        "labels": list(labels),
    }
    return RobustnessResult(settings=settings, rows=tuple(rows), metrics=metrics)
