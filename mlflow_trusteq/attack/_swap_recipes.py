"""Attack recipes: which words may change, and into what.

A recipe is the transformation plus its pre-transformation constraints; the search (greedy,
word importance by deletion) lives in :mod:`mlflow_trusteq.attack.runner` and is the same for
every recipe, as in TextAttack's ``GreedyWordSwapWIR(wir_method="delete")``.

- ``"word"`` (:class:`WordSwapRecipe`): TextFooler-style synonym swap. Synonyms come from a
  locally installed WordNet (:mod:`~mlflow_trusteq.attack.wordnet`) instead of TextFooler's
  counter-fitted embeddings, and the part-of-speech constraint uses WordNet instead of a tagger:
  with ``pos_constraint="dominant"`` (default) the synonyms are drawn only from the synsets of
  the word's *most frequent* part of speech in WordNet's sense-tagged corpus (``tagsense_cnt``;
  the "most frequent tag" baseline tagger), so that "good" in "a good movie" becomes
  "beneficial", not "commodity"; with ``"overlap"`` they are drawn from the synsets of every
  part of speech the word has, so each synonym shares at least one part of speech with it.
  Regular noun plurals are re-inflected ("movies" -> "films"); other inflections are not (a
  synonym of "ran" is a lemma such as "scat").
- ``"char"`` (:class:`CharSwapRecipe`): DeepWordBug-style edits of the most important words:
  swap two neighbouring letters, substitute, delete or insert one letter; no lexicon.

Both skip stop words (:data:`~mlflow_trusteq.attack._words.STOP_WORDS`) and words already
changed (a word position changes at most once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import InvalidInputError
from ._words import STOP_WORDS, char_candidates, match_case

__all__ = ["Recipe", "WordSwapRecipe", "CharSwapRecipe", "make_recipe", "RECIPES"]


class Recipe:
    """Base class: ``candidates(word, key)`` lists the replacements of one word."""

    name: str = ""

    def eligible(self, word: str) -> bool:
        """Pre-transformation constraint: may this word change at all?"""
        return word.lower() not in STOP_WORDS

    def candidates(self, word: str, key: tuple[int, ...]) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class WordSwapRecipe(Recipe):
    """WordNet synonym swap (TextFooler's search with WordNet as the word source).

    Parameters
    ----------
    max_candidates : int
        Synonyms tried per word, in WordNet's order (most frequent senses first); TextFooler's
        ``K = 50`` nearest neighbours.
    pos_constraint : {"dominant", "overlap"}
        See the module docstring.
    wordnet_dir : str, optional
        Folder of WordNet's files; found automatically when None.
    """

    max_candidates: int = 50
    pos_constraint: str = "dominant"
    wordnet_dir: str | None = None
    name: str = field(default="word", init=False)

    def __post_init__(self) -> None:
        if self.pos_constraint not in ("dominant", "overlap"):
            raise InvalidInputError(
                f"Expected `pos_constraint` in ('dominant', 'overlap'), got {self.pos_constraint!r}")
        if self.max_candidates < 1:
            raise InvalidInputError(f"Expected `max_candidates` >= 1, got {self.max_candidates}")
        from .wordnet import load_wordnet

        self._wn = load_wordnet(self.wordnet_dir)  # raises MissingDependencyError with the install command
        self._cache: dict[str, list[str]] = {}

    def candidates(self, word: str, key: tuple[int, ...] = ()) -> list[str]:
        low = word.lower()
        if low not in self._cache:
            pos = self._wn.dominant_pos(low) if self.pos_constraint == "dominant" else None
            syns = self._wn.synonyms(low, pos, max_n=self.max_candidates) if pos != () else []
            if self._is_regular_plural(low, pos):
                syns = list(dict.fromkeys(_pluralize(s) for s in syns))
            self._cache[low] = syns
        return [match_case(s, word) for s in self._cache[low]]

    def _is_regular_plural(self, word: str, pos: tuple[str, ...] | None) -> bool:
        """A noun in a regular plural ("movies" -> lemma "movie"): its synonyms are re-inflected."""
        if pos is not None and "n" not in pos:
            return False
        lemmas = self._wn.lemmas(word, "n")
        return bool(lemmas) and word not in lemmas and any(_pluralize(lem) == word for lem in lemmas)

    def settings(self) -> dict[str, Any]:
        return {"recipe": "word", "transformation": "WordNet synonym swap",
                "search": "greedy, word importance by deletion",
                "max_candidates": self.max_candidates, "pos_constraint": self.pos_constraint,
                "word_source": self._wn.source, "word_source_version": self._wn.version,
                "stop_words": len(STOP_WORDS)}


@dataclass
class CharSwapRecipe(Recipe):
    """DeepWordBug's character edits (swap, substitute, delete, insert), no lexicon.

    Parameters
    ----------
    per_operation : int
        Random positions per edit type and word (TextAttack's DeepWordBug: 1, so up to 4
        candidates per word).
    random_state : int
        Seed of the edit positions and letters; each word's generator is seeded with
        ``(random_state, example, token position)``, so parent and candidate get the same edits.
    """

    per_operation: int = 1
    random_state: int = 0
    name: str = field(default="char", init=False)

    def __post_init__(self) -> None:
        if self.per_operation < 1:
            raise InvalidInputError(f"Expected `per_operation` >= 1, got {self.per_operation}")

    def candidates(self, word: str, key: tuple[int, ...] = ()) -> list[str]:
        rng = np.random.default_rng([self.random_state, *key])
        return char_candidates(word, rng, per_operation=self.per_operation)

    def settings(self) -> dict[str, Any]:
        return {"recipe": "char", "transformation": "DeepWordBug character swap/substitute/delete/insert",
                "search": "greedy, word importance by deletion", "per_operation": self.per_operation,
                "word_source": "none (lexicon-free)", "stop_words": len(STOP_WORDS)}


def _pluralize(noun: str) -> str:
    """Regular English plural: -s, -es after s/x/z/ch/sh, -ies after a consonant + y."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


RECIPES = ("word", "char")


def make_recipe(name: str, *, random_state: int = 0, **options: Any) -> Recipe:
    """A recipe by name: ``"word"`` or ``"char"``."""
    if name == "word":
        return WordSwapRecipe(**options)
    if name == "char":
        return CharSwapRecipe(random_state=random_state, **options)
    raise InvalidInputError(f"Unknown attack recipe {name!r}; expected one of {RECIPES}")
