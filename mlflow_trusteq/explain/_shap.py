r"""SHAP attributions through the ``shap`` library's Partition explainer, fed by a batched model.

Text
    The features are word *occurrences* (the words of :mod:`._features`, in reading order over all
    fields). A masked occurrence is replaced by ``mask_token`` (default ``""``: the word is
    deleted, the separators around it kept — the same perturbation as LIME, and one that means the
    same to every tokenizer, unlike ``[MASK]``). The hierarchy is shap's own text clustering
    (``shap.maskers._text.partition_tree``, as ``shap.maskers.Text`` builds it) over the words of
    each field; for a pair the two field trees are joined under one root. The Partition
    explainer (Owen values) runs with ``max_evals`` evaluations per example, explaining the
    probability of the target class. The attribution of a word feature is the sum over its
    occurrences, so it lines up with LIME's bag-of-words features.
Tabular
    ``shap.explainers.Partition`` with ``shap.maskers.Partition(background)`` (correlation
    clustering of the columns; a masked column takes the background rows' values).

The Partition explainer has no randomness: for a fixed model, masker and ``max_evals`` its
attributions are identical run to run, so its noise floor (the parent against itself) is exactly
1 on every measure. The model function deduplicates the masked inputs and keeps a cache per model,
so no input is scored twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import MissingDependencyError
from ._features import TextFeatures

__all__ = ["text_clustering", "shap_text", "shap_tabular"]


def _shap_partition_tree() -> Callable[..., Any]:
    """shap's own text clustering, ``shap.maskers._text.partition_tree`` (a private shap API).

    Raises :class:`~mlflow_trusteq.MissingDependencyError` naming the installed shap when it has
    moved: another tree would change every SHAP number while the recorded settings still name
    shap's text tree, so there is no silent substitute.
    """
    import shap

    try:
        from shap.maskers._text import partition_tree
    except ImportError as exc:
        raise MissingDependencyError(
            f"shap {getattr(shap, '__version__', '?')} has no `shap.maskers._text.partition_tree`, the text "
            "clustering that trusteq's SHAP alignment uses (as shap.maskers.Text builds it); install a shap release "
            "that has it or run the alignment with methods=('lime',)") from exc
    return partition_tree  # type: ignore[no-any-return]


def _field_tree(words: list[str]) -> np.ndarray:
    if len(words) < 2:
        return np.zeros((0, 4))
    pt = np.asarray(_shap_partition_tree()(words, []), dtype=np.float64)
    pt[:, 2] = pt[:, 3] / pt[:, 3].max()
    return pt


def text_clustering(features: TextFeatures) -> np.ndarray:
    """Linkage matrix over the word occurrences: shap's text tree per field, fields joined at the root."""
    words = features.occurrence_names()
    sizes = [int(np.sum(f >= 0)) for f in features.piece_feature]
    sizes = [s for s in sizes if s > 0]
    n = sum(sizes)
    rows: list[np.ndarray] = []
    roots: list[tuple[int, int]] = []  # (node id, size)
    start = 0
    next_id = n
    for s in sizes:
        pt = _field_tree(words[start:start + s]).copy()
        base_internal = next_id
        for r in pt:
            for c in (0, 1):
                v = int(r[c])
                r[c] = start + v if v < s else base_internal + (v - s)
        rows.extend(pt)
        next_id += len(pt)
        roots.append((next_id - 1 if len(pt) else start, s))
        start += s
    while len(roots) > 1:
        (a, sa), (b, sb) = roots[0], roots[1]
        rows.append(np.array([a, b, 0.0, sa + sb], dtype=np.float64))
        roots = [(next_id, sa + sb)] + roots[2:]
        next_id += 1
    out = np.array(rows, dtype=np.float64).reshape(-1, 4)
    if len(out):
        out[:, 2] = out[:, 3] / out[:, 3].max()
    return out


def _mask_masker(n: int, clustering: np.ndarray) -> Any:
    """A shap masker whose masked input *is* the mask; the model function renders it."""
    import shap

    class _OccurrenceMasker(shap.maskers.Masker):  # type: ignore[misc]
        def __init__(self) -> None:
            self.shape = (1, n)
            self.clustering = clustering
            self.immutable_outputs = True

        def __call__(self, mask: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
            return (np.asarray(mask, dtype=bool).reshape(1, -1),)

        def mask_shapes(self, x: np.ndarray) -> list[tuple[int]]:
            return [(n,)]

    return _OccurrenceMasker()


def shap_text(features: TextFeatures, score: Callable[[list[tuple[str, ...]]], np.ndarray], *,
              max_evals: int = 500, batch_size: int = 64, mask_token: str = "") -> np.ndarray:
    """SHAP values of the word features of one example (length ``features.n_features``).

    ``score(list_of_field_tuples) -> (m,)`` returns the explained class's probability; it is
    called once per explainer batch with the *distinct* masked inputs of that batch.
    """
    import shap

    n = features.n_occurrences
    d = features.n_features
    if d == 0:
        return np.zeros(0)
    if n == 1:
        full = score([features.fields])[0]
        empty = score([features.render_occurrences(np.zeros(1, dtype=bool), mask_token)])[0]
        return np.array([full - empty])

    def f(masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        uniq, inverse = np.unique(masks, axis=0, return_inverse=True)
        inputs = [features.render_occurrences(m, mask_token) for m in uniq]
        return np.asarray(score(inputs), dtype=np.float64)[inverse.ravel()]

    masker = _mask_masker(n, text_clustering(features))
    explainer = shap.explainers.Partition(f, masker)
    out = explainer(np.ones((1, n)), max_evals=max_evals, batch_size=batch_size, silent=True)
    values = np.asarray(out.values, dtype=np.float64).reshape(-1)
    attribution = np.zeros(d)
    np.add.at(attribution, features.occurrence_feature, values)
    return attribution


def shap_tabular(row: np.ndarray, background: np.ndarray, score: Callable[[np.ndarray], np.ndarray], *,
                 max_evals: int = 500, batch_size: int = 64) -> np.ndarray:
    """SHAP values of one tabular row: Partition explainer over ``shap.maskers.Partition(background)``."""
    import shap

    row = np.asarray(row, dtype=np.float64).reshape(1, -1)
    masker = shap.maskers.Partition(np.asarray(background, dtype=np.float64), max_samples=len(background))

    def f(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        uniq, inverse = np.unique(x, axis=0, return_inverse=True)
        return np.asarray(score(uniq), dtype=np.float64)[inverse.ravel()]

    explainer = shap.explainers.Partition(f, masker)
    out = explainer(row, max_evals=max_evals, batch_size=batch_size, silent=True)
    return np.asarray(out.values, dtype=np.float64).reshape(-1)
