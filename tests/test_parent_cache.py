"""The parent is scored once: separate compare() calls with one parent on the same rows."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq import _cache, compare


@pytest.fixture()
def tabular():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=3000, n_features=5, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    df["label"] = y
    parent = LogisticRegression().fit(df.iloc[:1000, :5], y[:1000])
    cands = [LogisticRegression(C=c).fit(df.iloc[:1000, :5], y[:1000]) for c in (0.01, 0.1, 1e-3)]
    _cache.clear()
    yield parent, cands, df.iloc[1000:].reset_index(drop=True)
    _cache.clear()


def test_three_candidates_score_the_parent_once(tabular, caplog):
    parent, cands, df = tabular
    caplog.set_level(logging.INFO, logger="mlflow_trusteq._cache")
    reports = [compare(parent, c, df, targets="label", n_resamples=50) for c in cands]
    assert _cache.stats()["stores"] == 1 and _cache.stats()["hits"] == 2
    assert sum("parent cache hit" in r.message for r in caplog.records) == 2
    assert "parent_scores" not in reports[0].settings
    assert reports[1].settings["parent_scores"].startswith("cached")
    # the same numbers as without the cache (the reference: the cache switched off)
    for c, rep in zip(cands, reports):
        fresh = compare(parent, c, df, targets="label", n_resamples=50, parent_cache=False)
        for key, est in fresh.metrics.items():
            if key in ("parent/throughput", "candidate/throughput", "speedup", "parent/latency", "candidate/latency"):
                continue
            assert rep.metrics[key] == est, key
    np.testing.assert_array_equal(reports[2].predictions.parent, reports[0].predictions.parent)


def test_other_rows_or_another_parent_are_a_miss(tabular):
    parent, cands, df = tabular
    compare(parent, cands[0], df, targets="label", n_resamples=20)
    compare(parent, cands[0], df.iloc[:1500], targets="label", n_resamples=20)  # other rows
    compare(cands[1], cands[0], df, targets="label", n_resamples=20)  # another parent
    compare(parent, cands[0], df, targets="label", n_resamples=20, chunk_size=500)  # a setting that can change it
    assert _cache.stats()["hits"] == 0 and _cache.stats()["stores"] == 4


def test_a_model_folder_is_keyed_by_its_files_and_the_disk_cache_is_shared(tabular, tmp_path, monkeypatch):
    import mlflow.sklearn

    parent, cands, df = tabular
    folder = tmp_path / "parent_model"
    mlflow.sklearn.save_model(parent, folder)
    monkeypatch.setenv(_cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    first = compare(str(folder), cands[0], df, targets="label", n_resamples=20)
    _cache.clear()  # another process: only the folder on disk is left
    second = compare(str(folder), cands[1], df, targets="label", n_resamples=20)
    assert _cache.stats()["hits"] == 1
    np.testing.assert_array_equal(first.predictions.parent, second.predictions.parent)
    assert _cache.model_content_digest(str(folder)) == _cache.model_content_digest(folder)


def test_a_model_without_a_content_digest_is_not_cached(tabular):
    parent, cands, df = tabular
    assert _cache.model_content_digest(lambda x: x) is None
    assert _cache.parent_scores_key(parent, "d", chunk_size=1, parent_kwargs={"tokenizer": object()}) is None


def test_spark_tables_are_held_up_to_the_limit_and_released_oldest_first(caplog):
    """The Spark engine's entries: frames held by key; past MAX_TABLES the oldest is released (unpersisted)."""
    _cache.clear()
    released = []
    frames = [object() for _ in range(_cache.MAX_TABLES + 1)]
    for i, frame in enumerate(frames):
        _cache.put_parent_table(f"key{i}", frame, release=released.append)
    assert released == [frames[0]] and _cache.stats()["tables"] == _cache.MAX_TABLES
    assert _cache.get_parent_table("key0") is None
    caplog.set_level(logging.INFO, logger="mlflow_trusteq._cache")
    assert _cache.get_parent_table("key1") is frames[1]
    assert any("parent cache hit" in r.message for r in caplog.records)
    _cache.clear()
    assert set(map(id, released)) == set(map(id, frames)) and _cache.stats()["tables"] == 0


def test_a_spark_table_key_changes_with_the_table_and_the_settings(tabular):
    parent, cands, _ = tabular
    key = _cache.parent_table_key(parent, "table-a", settings={"columns": ["x0"], "arrow_batch": "10000"})
    assert key is not None
    assert key == _cache.parent_table_key(parent, "table-a", settings={"arrow_batch": "10000", "columns": ["x0"]})
    assert key != _cache.parent_table_key(parent, "table-b", settings={"columns": ["x0"], "arrow_batch": "10000"})
    assert key != _cache.parent_table_key(parent, "table-a", settings={"columns": ["x0"], "arrow_batch": "5000"})
    assert key != _cache.parent_table_key(cands[0], "table-a", settings={"columns": ["x0"], "arrow_batch": "10000"})
    assert _cache.parent_table_key(lambda x: x, "table-a", settings={}) is None
