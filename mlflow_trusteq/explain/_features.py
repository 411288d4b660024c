"""Interpretable features shared by LIME and SHAP: words of text fields, or tabular columns.

Words are maximal runs of word characters (``\\w+``), i.e. the text split on white space and
punctuation, exactly as ``lime``'s ``LimeTextExplainer(split_expression=r"\\W+")`` splits it. A
feature is a distinct word of a field (``bow=True``: removing a feature removes *all* its
occurrences); the separators between words are kept, so a perturbed text is the original with
some words deleted, character for character what ``lime``'s ``IndexedString.inverse_removing``
produces. For a text pair the features of both fields are kept apart and tagged by field
(``"1:word"``, ``"2:word"``). Features are words, never sub-word tokens, so two models with
different tokenizers are explained over the same features.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TextFeatures", "text_features", "WORD_PATTERN"]

#: The word pattern: a feature is a maximal run of ``\w`` characters.
WORD_PATTERN = re.compile(r"\w+")


@dataclass(frozen=True)
class TextFeatures:
    """The word features of one example (one or two text fields).

    Attributes
    ----------
    fields : tuple of str
        The original texts.
    pieces : tuple of tuple of str
        Per field, the text cut into alternating words and separators (``"".join`` gives it back).
    piece_feature : tuple of numpy.ndarray
        Per field and piece, the feature index of a word piece, ``-1`` for a separator.
    names : tuple of str
        Feature names in order of first occurrence (tagged ``"<field>:<word>"`` for pairs).
    words : tuple of str
        The bare word of each feature.
    occurrence_feature : numpy.ndarray
        For each word occurrence (in reading order over all fields) its feature index.
    """

    fields: tuple[str, ...]
    pieces: tuple[tuple[str, ...], ...]
    piece_feature: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    words: tuple[str, ...]
    occurrence_feature: np.ndarray

    @property
    def n_features(self) -> int:
        return len(self.names)

    @property
    def n_occurrences(self) -> int:
        return int(self.occurrence_feature.size)

    def render(self, keep: np.ndarray) -> tuple[str, ...]:
        """The fields with every occurrence of the features where ``keep`` is False deleted."""
        keep = np.asarray(keep, dtype=bool)
        return tuple("".join(p for p, f in zip(pieces, feats) if f < 0 or keep[f])
                     for pieces, feats in zip(self.pieces, self.piece_feature))

    def render_occurrences(self, keep: np.ndarray, mask_token: str = "") -> tuple[str, ...]:
        """The fields with the word *occurrences* where ``keep`` is False deleted (or replaced)."""
        keep = np.asarray(keep, dtype=bool)
        out = []
        j = 0
        for pieces, feats in zip(self.pieces, self.piece_feature):
            parts = []
            for p, f in zip(pieces, feats):
                if f < 0:
                    parts.append(p)
                else:
                    parts.append(p if keep[j] else mask_token)
                    j += 1
            out.append("".join(parts))
        return tuple(out)

    def occurrence_names(self) -> list[str]:
        """Bare word of each occurrence, in reading order."""
        return [self.words[f] for f in self.occurrence_feature]


def text_features(fields: Sequence[str]) -> TextFeatures:
    """Cut one example (a text, or a pair of texts) into word features.

    >>> f = text_features(["a good, good movie"])
    >>> f.names, f.render([True, False, True])
    (('a', 'good', 'movie'), ('a , movie',))
    """
    fields = tuple("" if s is None else str(s) for s in fields)
    tagged = len(fields) > 1
    index: dict[str, int] = {}
    names: list[str] = []
    words: list[str] = []
    all_pieces = []
    all_feats = []
    occ = []
    for fi, text in enumerate(fields):
        pieces: list[str] = []
        feats: list[int] = []
        pos = 0
        for m in WORD_PATTERN.finditer(text):
            if m.start() > pos:
                pieces.append(text[pos:m.start()])
                feats.append(-1)
            word = m.group(0)
            name = f"{fi + 1}:{word}" if tagged else word
            if name not in index:
                index[name] = len(names)
                names.append(name)
                words.append(word)
            pieces.append(word)
            feats.append(index[name])
            occ.append(index[name])
            pos = m.end()
        if pos < len(text):
            pieces.append(text[pos:])
            feats.append(-1)
        all_pieces.append(tuple(pieces))
        all_feats.append(np.asarray(feats, dtype=np.int64))
    return TextFeatures(fields, tuple(all_pieces), tuple(all_feats), tuple(names), tuple(words),
                        np.asarray(occ, dtype=np.int64))
