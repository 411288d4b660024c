"""Black-box robustness attacks: the same attack, budget, examples and seed on parent and candidate.

>>> from mlflow_trusteq.attack import RobustnessConfig, measure_robustness   # doctest: +SKIP
>>> result = measure_robustness(parent, candidate, records, targets,
...                             config=RobustnessConfig(recipes=("word", "char"), n_examples=100))  # doctest: +SKIP
>>> result.estimates()["word/candidate/after_attack_accuracy"]                 # doctest: +SKIP
"""

from __future__ import annotations

from ._swap_recipes import RECIPES, CharSwapRecipe, Recipe, WordSwapRecipe, make_recipe
from .runner import (
    AttackOutcome,
    QueryBudget,
    RobustnessConfig,
    RobustnessResult,
    attack_text,
    measure_robustness,
)
from .wordnet import WordNet, find_wordnet_dir, load_wordnet

__all__ = [
    "RobustnessConfig",
    "RobustnessResult",
    "measure_robustness",
    "attack_text",
    "AttackOutcome",
    "QueryBudget",
    "Recipe",
    "WordSwapRecipe",
    "CharSwapRecipe",
    "make_recipe",
    "RECIPES",
    "WordNet",
    "find_wordnet_dir",
    "load_wordnet",
]
