"""Tokens, stop words and character edits: the lexicon-free pieces of the attacks."""

from __future__ import annotations

import re
import string

import numpy as np

__all__ = ["STOP_WORDS", "Tokens", "tokenize", "char_candidates"]

# A small English stop-word list (function words, auxiliaries, pronouns, negation kept out on
# purpose: "not"/"no"/"never" carry sentiment and TextFooler attacks them too).
STOP_WORDS: frozenset[str] = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself of off on once only or other our ours ourselves out over own same she should so some such
than that the their theirs them themselves then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your yours
yourself yourselves s t d ll m o re ve y 's 're 've 'd 'll 'm n't
""".split())

_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\s+|[^A-Za-z\s]+")
_WORD = re.compile(r"^[A-Za-z]+(?:'[A-Za-z]+)?$")


class Tokens:
    """A text split into tokens that join back to it exactly; ``words`` indexes the word tokens.

    ``"It's a charming, funny movie"`` -> ``["It's", " ", "a", " ", "charming", ",", ...]``.
    Words are ASCII letters with an optional inner apostrophe; everything else (spaces,
    punctuation, digits) is kept verbatim and never edited.
    """

    __slots__ = ("tokens", "words")

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.words = [i for i, t in enumerate(tokens) if _WORD.match(t)]

    def text(self) -> str:
        return "".join(self.tokens)

    def replaced(self, token_index: int, new: str) -> str:
        """The text with token ``token_index`` replaced by ``new``."""
        toks = list(self.tokens)
        toks[token_index] = new
        return "".join(toks)

    def deleted(self, token_index: int) -> str:
        """The text without token ``token_index`` (and one space beside it)."""
        toks = list(self.tokens)
        toks[token_index] = ""
        if token_index + 1 < len(toks) and toks[token_index + 1].isspace():
            toks[token_index + 1] = ""
        elif token_index > 0 and toks[token_index - 1].isspace():
            toks[token_index - 1] = ""
        return "".join(toks)

    def with_word(self, token_index: int, new: str) -> Tokens:
        toks = list(self.tokens)
        toks[token_index] = new
        out = Tokens.__new__(Tokens)
        out.tokens = toks
        out.words = self.words
        return out


def tokenize(text: str) -> Tokens:
    return Tokens(_TOKEN.findall(text))


def match_case(new: str, like: str) -> str:
    """``new`` in the capitalisation of ``like`` (UPPER, Title or lower)."""
    if like.isupper() and len(like) > 1:
        return new.upper()
    if like[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def char_candidates(word: str, rng: np.random.Generator, *, per_operation: int = 1) -> list[str]:
    """DeepWordBug's four edits of ``word``: swap two neighbours, substitute, delete, insert a letter.

    Each operation is applied ``per_operation`` times at random positions drawn from ``rng``
    (the TextAttack DeepWordBug recipe uses one of each). Candidates equal to ``word``, empty
    ones and duplicates are dropped; order is swap, substitute, delete, insert.
    """
    n = len(word)
    letters = string.ascii_lowercase
    out: list[str] = []

    def add(w: str) -> None:
        if w and w != word and w not in out:
            out.append(w)

    for _ in range(per_operation):
        if n >= 2:
            i = int(rng.integers(0, n - 1))
            add(word[:i] + word[i + 1] + word[i] + word[i + 2:])
        i = int(rng.integers(0, n))
        c = letters[int(rng.integers(0, 26))]
        if c == word[i].lower():
            c = letters[(letters.index(c) + 1) % 26]
        add(word[:i] + (c.upper() if word[i].isupper() else c) + word[i + 1:])
        if n >= 2:
            i = int(rng.integers(0, n))
            add(word[:i] + word[i + 1:])
        i = int(rng.integers(0, n + 1))
        add(word[:i] + letters[int(rng.integers(0, 26))] + word[i:])
    return out
