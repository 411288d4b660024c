"""Optional: run a TextAttack recipe (TextFooler, DeepWordBug, ...) against a ProbaModel.

TextAttack (``pip install textattack``) is *not* a dependency of trusteq: it pulls flair,
datasets, bert-score and more, and its word-level recipes download their resources at run time
(counter-fitted embeddings, the Universal Sentence Encoder, nltk data). Use this adapter where
those resources are already in place; the offline recipes of :mod:`mlflow_trusteq.attack` need
none of them.

Example
-------
>>> from mlflow_trusteq.attack.textattack import run_textattack        # doctest: +SKIP
>>> out = run_textattack(model, records, [1, 0, 1], recipe="textfooler", query_budget=200)  # doctest: +SKIP
>>> out[0].status, out[0].queries                                      # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidInputError, MissingDependencyError
from .runner import AttackOutcome, ProbaModel

__all__ = ["run_textattack", "TEXTATTACK_RECIPES", "proba_model_wrapper"]

#: Short names of some TextAttack recipes -> (module, class).
TEXTATTACK_RECIPES: dict[str, str] = {
    "textfooler": "TextFoolerJin2019",
    "deepwordbug": "DeepWordBugGao2018",
    "pwws": "PWWSRen2019",
    "bae": "BAEGarg2019",
    "textbugger": "TextBuggerLi2018",
}


def _textattack() -> Any:
    try:
        return importlib.import_module("textattack")
    except ImportError as exc:
        raise MissingDependencyError(
            "the TextAttack adapter needs the textattack package and its recipe resources: "
            "pip install textattack (heavy; the built-in offline recipes 'word' and 'char' need none of it)"
        ) from exc


def proba_model_wrapper(model: ProbaModel, columns: Sequence[str]) -> Any:
    """A ``textattack.models.wrappers.ModelWrapper`` that scores texts (or tuples of texts) with ``model``."""
    ta = _textattack()
    cols = list(columns)
    # a class of the optional, lazily imported package: typed Any, as mypy cannot see it statically
    model_wrapper: Any = ta.models.wrappers.ModelWrapper

    class _Wrapper(model_wrapper):
        def __init__(self) -> None:
            self.model = model

        def __call__(self, text_input_list: list[Any], **kwargs: Any) -> np.ndarray:
            rows = [(t,) if isinstance(t, str) else tuple(t) for t in text_input_list]
            return np.asarray(model.predict_proba(pd.DataFrame(rows, columns=cols)), dtype=np.float64)

    return _Wrapper()


def run_textattack(model: ProbaModel, records: pd.DataFrame, targets: Sequence[int], *, recipe: str = "textfooler",
                   query_budget: int = 200, random_state: int = 0) -> list[AttackOutcome]:
    """Attack each record with a TextAttack recipe; one :class:`AttackOutcome` per record.

    ``targets`` are label indices into ``model.labels``. For text pairs TextAttack perturbs the
    columns its recipe chooses (TextFooler: all of them unless constrained), unlike the built-in
    recipes, which perturb one field.
    """
    ta = _textattack()
    if recipe not in TEXTATTACK_RECIPES:
        raise InvalidInputError(f"Unknown TextAttack recipe {recipe!r}; known: {sorted(TEXTATTACK_RECIPES)}")
    if len(targets) != len(records):
        raise InvalidInputError(f"`targets` has {len(targets)} entries but `records` has {len(records)} rows")
    cols = list(records.columns)
    wrapper = proba_model_wrapper(model, cols)
    attack = getattr(ta.attack_recipes, TEXTATTACK_RECIPES[recipe]).build(wrapper)
    data = [((r[0] if len(cols) == 1 else tuple(r)), int(t)) for r, t in zip(records.itertuples(index=False), targets)]
    dataset = ta.datasets.Dataset(data, input_columns=cols)
    args = ta.AttackArgs(num_examples=len(data), query_budget=query_budget, random_seed=random_state,
                         disable_stdout=True, silent=True)
    results = ta.Attacker(attack, dataset, args).attack_dataset()
    out = []
    for r in results:
        status = {"SuccessfulAttackResult": "success", "FailedAttackResult": "failed",
                  "SkippedAttackResult": "skipped"}.get(type(r).__name__, "failed")
        before = r.original_result.raw_output
        after = r.perturbed_result.raw_output
        orig = r.original_result.attacked_text
        pert = r.perturbed_result.attacked_text
        n_words = len(orig.words)
        changed = len(orig.all_words_diff(pert)) if status == "success" else 0
        out.append(AttackOutcome(status, orig.text, pert.text, int(r.num_queries),
                                 changed / n_words if n_words else 0.0, n_words,
                                 tuple(float(x) for x in np.asarray(before)),
                                 tuple(float(x) for x in np.asarray(after))))
    return out
