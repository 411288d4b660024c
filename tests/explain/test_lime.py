"""Our LIME against the `lime` package on the same perturbations (same RandomState seed)."""

from __future__ import annotations

import numpy as np
import pytest

from mlflow_trusteq.explain._features import text_features
from mlflow_trusteq.explain._lime import explain_from_masks, kernel_weights, sample_masks


def test_features_split_like_lime():
    lime_text = pytest.importorskip("lime.lime_text")
    for t in ["it 's a good , good film -- not bad!", "  leading space;and punctuation...", "one"]:
        s = lime_text.IndexedString(t, bow=True)
        f = text_features([t])
        assert list(f.names) == s.inverse_vocab
        assert f.render(np.ones(f.n_features, bool)) == (t,)
        drop = [0]
        keep = np.ones(f.n_features, bool)
        keep[drop] = False
        assert f.render(keep)[0] == s.inverse_removing(drop)


@pytest.mark.parametrize("num_features", [10, 4])  # highest_weights and forward selection
def test_lime_matches_lime_package(tfidf_pair, sst2_small, num_features):
    lime_text = pytest.importorskip("lime.lime_text")
    parent, _ = tfidf_pair
    _, dev = sst2_small
    for i, text in enumerate(dev["sentence"][:6]):
        seed = 100 + i
        exp = lime_text.LimeTextExplainer(random_state=seed).explain_instance(
            text, parent.predict_proba, num_features=num_features, num_samples=300, labels=(1,))
        f = text_features([text])
        masks = sample_masks(f.n_features, 300, seed)
        y = parent.predict_proba([f.render(m)[0] for m in masks])[:, 1]
        ours = explain_from_masks(masks, y, num_features=num_features)
        theirs = exp.as_list(label=1)
        assert [f.names[j] for j in ours.selected] == [w for w, _ in theirs]
        np.testing.assert_allclose(ours.weights[ours.selected], [v for _, v in theirs], atol=1e-9)
        assert ours.intercept == pytest.approx(exp.intercept[1])
        assert ours.score == pytest.approx(exp.score)


def test_masks_and_kernel():
    m = sample_masks(5, 200, 0)
    assert m.shape == (200, 5) and m[0].all() and (~m[1:]).any(axis=1).all()
    from sklearn.metrics.pairwise import pairwise_distances

    z = m.astype(float)
    d = pairwise_distances(z, z[:1], metric="cosine").ravel() * 100
    np.testing.assert_allclose(kernel_weights(m), np.sqrt(np.exp(-d ** 2 / 25 ** 2)), atol=1e-12)
