from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import is_valid_linkage

from mlflow_trusteq.explain._features import text_features
from mlflow_trusteq.explain._shap import shap_text, text_clustering


@pytest.mark.parametrize("fields", [["a good movie , truly"], ["one"], ["the cat sat", "a dog ran far away"],
                                    ["x", "y"], ["", "only the second field"]])
def test_clustering_is_a_valid_tree_over_all_words(fields):
    f = text_features(fields)
    z = text_clustering(f)
    n = f.n_occurrences
    assert z.shape == (max(n - 1, 0), 4)
    if n > 1:
        assert is_valid_linkage(np.column_stack([z[:, :2], z[:, 2], z[:, 3]]))
        assert z[-1, 3] == n


def test_shap_efficiency_and_exact_dummy():
    """Owen values add up to f(x) - f(empty); a word the model ignores gets 0 with a full budget."""
    f = text_features(["not a bad film , not at all"])

    def score(inputs):
        return np.array([0.1 + 0.5 * ("bad" in s[0]) + 0.2 * ("film" in s[0]) for s in inputs])

    v = shap_text(f, score, max_evals=500)
    full, empty = score([f.fields])[0], score([("",)])[0]
    assert v.sum() == pytest.approx(full - empty)
    assert v[f.names.index("bad")] == pytest.approx(0.5)
    assert v[f.names.index("film")] == pytest.approx(0.2)
    assert v[f.names.index("not")] == pytest.approx(0.0, abs=1e-12)
    # deterministic
    np.testing.assert_array_equal(v, shap_text(f, score, max_evals=500))


def test_moved_private_clustering_api_is_an_error_not_another_tree(monkeypatch):
    """If shap's private `partition_tree` moves, no other tree may stand in while the settings name shap's."""
    import shap.maskers._text

    from mlflow_trusteq import MissingDependencyError

    f = text_features(["a good movie , truly"])
    expected = text_clustering(f)
    monkeypatch.delattr(shap.maskers._text, "partition_tree")
    with pytest.raises(MissingDependencyError, match=r"shap \S+ has no `shap.maskers._text.partition_tree`"):
        text_clustering(f)
    with pytest.raises(MissingDependencyError, match="partition_tree"):
        shap_text(f, lambda xs: np.zeros(len(xs)), max_evals=20)
    monkeypatch.undo()
    np.testing.assert_array_equal(text_clustering(f), expected)
