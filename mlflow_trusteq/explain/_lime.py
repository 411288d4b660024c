r"""LIME (Ribeiro et al., 2016) on scikit-learn, faithful to the ``lime`` package's text defaults.

The algorithm of ``lime.lime_text.LimeTextExplainer().explain_instance`` (lime 0.2), split in two
so that the *same* perturbations can be scored by two models:

1. :func:`sample_masks` — ``num_samples`` binary masks over the ``d`` features; row 0 is all
   ones (the unperturbed input); for every other row the number of removed features is drawn
   uniformly from :math:`\{1, \dots, d\}` (``randint(1, d + 1)``, as lime does: a row may remove
   every word) and that many features are chosen without replacement. The random calls are those
   of lime on a ``numpy.random.RandomState``, so the same integer seed gives lime's own masks.
2. :func:`explain_from_masks` — the model's probability :math:`y` of the explained class on each
   perturbed input, the distance of each mask :math:`z` to the all-ones vector
   :math:`D(z) = 100\,(1 - \cos(z, \mathbf 1))`, the kernel
   :math:`\pi(z) = \sqrt{\exp(-D(z)^2 / w^2)}` with ``kernel_width`` :math:`w = 25`, feature
   selection (``'auto'``: forward selection when ``num_features <= 6``, else the
   ``num_features`` largest :math:`|\beta_j|` of a weighted ``Ridge(alpha=0.01)`` over all
   features) and finally a weighted ``Ridge(alpha=1, fit_intercept=True)`` on the selected
   features. Its coefficients are the explanation.

Besides the explanation (non-zero only on the selected features), :func:`explain_from_masks` returns
the coefficients of the same weighted ``Ridge(alpha=1)`` on *all* features, a dense attribution
used for the rank correlation (lime's ``feature_selection='none'``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._errors import InvalidInputError

__all__ = ["sample_masks", "explain_from_masks", "LimeExplanation", "kernel_weights"]


def sample_masks(n_features: int, num_samples: int, random_state: int) -> np.ndarray:
    """LIME's perturbation masks, ``(num_samples, n_features)`` bool; row 0 keeps every feature.

    Uses ``numpy.random.RandomState(random_state)`` with exactly lime's calls, so
    ``LimeTextExplainer(random_state=random_state)`` perturbs a text the same way.
    """
    if num_samples < 1:
        raise InvalidInputError(f"Expected `num_samples` >= 1, got {num_samples}")
    if n_features < 1:
        raise InvalidInputError(f"Expected `n_features` >= 1, got {n_features}")
    rs = np.random.RandomState(random_state)
    sizes = rs.randint(1, n_features + 1, num_samples - 1)
    masks = np.ones((num_samples, n_features), dtype=bool)
    for i, size in enumerate(sizes, start=1):
        masks[i, rs.choice(n_features, size, replace=False)] = False
    return masks


def kernel_weights(masks: np.ndarray, kernel_width: float = 25.0) -> np.ndarray:
    r"""Sample weights :math:`\sqrt{\exp(-D^2/w^2)}`, :math:`D = 100 \cdot` cosine distance to all-ones.

    An all-zero mask has cosine distance 1 (scikit-learn's convention for a zero vector).
    """
    z = np.asarray(masks, dtype=np.float64)
    s = z.sum(axis=1)
    d = z.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(s > 0, s / np.sqrt(s * d), 0.0)
    dist = np.clip(1.0 - cos, 0.0, 2.0) * 100.0
    return np.sqrt(np.exp(-(dist ** 2) / kernel_width ** 2))


@dataclass(frozen=True)
class LimeExplanation:
    """One LIME explanation.

    ``weights``: length ``d``, the ridge coefficients on the selected features, 0 elsewhere;
    ``selected``: the selected feature indices, by decreasing ``|weight|`` (lime's ``as_map`` order);
    ``full``: ridge coefficients over all features; ``intercept``, ``score`` (weighted R²) and
    ``local_pred`` as lime reports them.
    """

    weights: np.ndarray
    selected: np.ndarray
    full: np.ndarray
    intercept: float
    score: float
    local_pred: float


def _forward_selection(data: np.ndarray, labels: np.ndarray, weights: np.ndarray, num_features: int) -> np.ndarray:
    from sklearn.linear_model import Ridge

    clf = Ridge(alpha=0, fit_intercept=True)
    used: list[int] = []
    for _ in range(min(num_features, data.shape[1])):
        best, max_ = 0, -100000000.0
        for feature in range(data.shape[1]):
            if feature in used:
                continue
            cols = used + [feature]
            clf.fit(data[:, cols], labels, sample_weight=weights)
            score = clf.score(data[:, cols], labels, sample_weight=weights)
            if score > max_:
                best, max_ = feature, score
        used.append(best)
    return np.array(used, dtype=np.int64)


def _highest_weights(data: np.ndarray, labels: np.ndarray, weights: np.ndarray, num_features: int) -> np.ndarray:
    from sklearn.linear_model import Ridge

    coef = Ridge(alpha=0.01, fit_intercept=True).fit(data, labels, sample_weight=weights).coef_
    weighted = coef * data[0]
    ranked = sorted(zip(range(data.shape[1]), weighted), key=lambda x: np.abs(x[1]), reverse=True)
    return np.array([j for j, _ in ranked[:num_features]], dtype=np.int64)


def explain_from_masks(masks: np.ndarray, y: np.ndarray, *, num_features: int = 10, kernel_width: float = 25.0,
                       feature_selection: str = "auto") -> LimeExplanation:
    """Fit LIME's local model to ``masks`` (row 0 the original) and the explained class's ``y``.

    ``feature_selection`` is ``'auto'`` (lime's default), ``'forward_selection'``,
    ``'highest_weights'`` or ``'none'``.
    """
    from sklearn.linear_model import Ridge

    data = np.asarray(masks, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if data.ndim != 2 or data.shape[0] != y.size:
        raise InvalidInputError(f"Expected masks (n, d) and y (n,), got {data.shape} and {y.shape}")
    if feature_selection not in {"auto", "forward_selection", "highest_weights", "none"}:
        raise InvalidInputError(f"Unknown `feature_selection` {feature_selection!r}")
    w = kernel_weights(data, kernel_width)
    d = data.shape[1]
    method = feature_selection
    if method == "auto":
        method = "forward_selection" if num_features <= 6 else "highest_weights"
    if method == "none":
        used = np.arange(d)
    elif method == "forward_selection":
        used = _forward_selection(data, y, w, num_features)
    else:
        used = _highest_weights(data, y, w, num_features)
    model = Ridge(alpha=1, fit_intercept=True).fit(data[:, used], y, sample_weight=w)
    score = float(model.score(data[:, used], y, sample_weight=w))
    local_pred = float(model.predict(data[0, used].reshape(1, -1))[0])
    order = sorted(zip(used.tolist(), model.coef_), key=lambda x: np.abs(x[1]), reverse=True)
    weights = np.zeros(d)
    weights[used] = model.coef_
    full = Ridge(alpha=1, fit_intercept=True).fit(data, y, sample_weight=w).coef_ if method != "none" else weights
    return LimeExplanation(weights=weights, selected=np.array([j for j, _ in order], dtype=np.int64),
                           full=np.asarray(full, dtype=np.float64), intercept=float(model.intercept_),
                           score=score, local_pred=local_pred)
