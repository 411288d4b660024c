"""Tokens and DeepWordBug character edits."""

from __future__ import annotations

import numpy as np

from mlflow_trusteq.attack._words import STOP_WORDS, char_candidates, match_case, tokenize


def test_tokens_join_back_exactly():
    for text in ["it 's a charming , funny movie .", "Don't  stop -- 3 times!", "", "   "]:
        toks = tokenize(text)
        assert toks.text() == text
    toks = tokenize("it 's a charming movie .")
    assert [toks.tokens[i] for i in toks.words] == ["it", "s", "a", "charming", "movie"]
    assert toks.deleted(7) == "it 's a movie ."
    assert toks.replaced(9, "film") == "it 's a charming film ."


def test_char_candidates_are_single_edits_and_seeded():
    rng = np.random.default_rng(0)
    cands = char_candidates("charming", rng)
    assert 1 <= len(cands) <= 4 and "charming" not in cands and len(set(cands)) == len(cands)
    swap, sub, dele, ins = cands
    assert sorted(swap) == sorted("charming") and sum(a != b for a, b in zip(swap, "charming")) == 2
    assert len(sub) == 8 and sum(a != b for a, b in zip(sub, "charming")) == 1
    assert len(dele) == 7 and len(ins) == 9
    assert char_candidates("charming", np.random.default_rng(0)) == cands
    assert char_candidates("a", np.random.default_rng(0))  # substitution/insertion still possible
    assert all(c for c in char_candidates("ab", np.random.default_rng(1), per_operation=3))


def test_case_and_stop_words():
    assert match_case("film", "Movie") == "Film"
    assert match_case("film", "MOVIE") == "FILM"
    assert "the" in STOP_WORDS and "not" not in STOP_WORDS
