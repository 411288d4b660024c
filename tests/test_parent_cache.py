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


# ----------------------------------------------------------------------------- the parent's other calls
PARENT_ROWS: list[int] = []  # rows the counting parent was asked to score, per call


def _counting_pipeline(train):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    pipe = CountingPipeline([("tfidf", TfidfVectorizer()), ("lr", LogisticRegression(max_iter=1000))])
    return pipe.fit(train["sentence"], train["label"])


try:
    from sklearn.pipeline import Pipeline

    class CountingPipeline(Pipeline):
        """A text pipeline that records how many rows each predict_proba call scored."""

        def predict_proba(self, X, **params):
            PARENT_ROWS.append(len(X))
            return super().predict_proba(X, **params)
except ImportError:  # pragma: no cover - scikit-learn is a test dependency
    pass


SECTIONS = {"alignment": {"methods": ["lime"], "n_examples": 4, "lime_num_samples": 60, "progress": False},
            "robustness": {"recipes": ["word", "char"], "n_examples": 4, "query_budget": 25, "progress": False}}


def _section_numbers(report):
    return {k: v for k, v in report.metrics.items() if k.startswith(("alignment/", "robustness/"))}


def test_the_parents_alignment_and_attack_calls_are_made_once_across_candidates(sst2_small, tfidf_pair, caplog):
    """The second candidate's LIME, noise floor and attacks get the parent's answers from the memo.

    On the old code every candidate queried the parent again on every perturbation and attack text
    (thousands of rows); with the memo the second evaluation scores none (the same seeds give the
    same inputs), and its numbers equal those of an evaluation with the cache switched off.
    """
    train, dev = sst2_small
    parent, candidate = _counting_pipeline(train), tfidf_pair[1]
    other = tfidf_pair[0]
    _cache.clear()
    caplog.set_level(logging.INFO, logger="mlflow_trusteq.compare")
    PARENT_ROWS.clear()
    compare(parent, candidate, dev, targets="label", n_resamples=20, **SECTIONS)
    first = sum(PARENT_ROWS)
    assert first > 2 * len(dev)  # the sections queried the parent well beyond its scoring pass
    PARENT_ROWS.clear()
    compare(parent, other, dev, targets="label", n_resamples=20)  # no sections: the timings' calls alone
    timing_rows = sum(PARENT_ROWS)
    PARENT_ROWS.clear()
    cached = compare(parent, other, dev, targets="label", n_resamples=20, **SECTIONS)
    # the sections asked the parent nothing new (at most a few attack texts of the other candidate)
    assert sum(PARENT_ROWS) - timing_rows < 0.05 * first, PARENT_ROWS
    assert _cache.stats()["call_hits"] > 0
    assert any("parent cache hit: alignment reused" in r.message for r in caplog.records)
    assert any("parent cache hit: robustness reused" in r.message for r in caplog.records)
    PARENT_ROWS.clear()
    fresh = compare(parent, other, dev, targets="label", n_resamples=20, parent_cache=False, **SECTIONS)
    assert sum(PARENT_ROWS) - timing_rows > 2 * len(dev)  # without the cache: the parent is queried again
    assert _section_numbers(cached) == _section_numbers(fresh) and _section_numbers(cached)
    _cache.clear()


def test_the_memo_answers_only_what_the_model_answered():
    """Unseen rows reach the model in one call, in order; seen ones do not; attributes pass through."""
    calls = []

    class Model:
        labels = ("a", "b")
        max_tokens_per_batch = 10

        def predict_proba(self, frame):
            calls.append(list(frame["t"]))
            p = np.array([[len(t) / 10, 1 - len(t) / 10] for t in frame["t"]])
            return p

    inner = Model()
    memo = _cache.CallMemo(max_rows=3)
    m = _cache.MemoizedModel(inner, memo)
    a = m.predict_proba(pd.DataFrame({"t": ["x", "yy"]}))
    b = m.predict_proba(pd.DataFrame({"t": ["yy", "zzz", "x"]}))
    assert calls == [["x", "yy"], ["zzz"]]
    np.testing.assert_array_equal(b, inner.predict_proba(pd.DataFrame({"t": ["yy", "zzz", "x"]})))
    np.testing.assert_array_equal(a[1], b[0])
    assert (memo.hits, memo.misses) == (2, 3)
    m.max_tokens_per_batch = 99  # written through: the alignment stage's token budget reaches the adapter
    assert inner.max_tokens_per_batch == 99 and m.labels == ("a", "b")
    m.predict_proba(pd.DataFrame({"t": ["wwww"]}))  # a fourth input: the least recently used ("yy") goes
    assert len(memo) == 3
    m.predict_proba(pd.DataFrame({"t": ["yy"]}))
    assert calls[-1] == ["yy"]
    # the same value under another column name is another input: the model is asked
    inner_calls = len(calls)
    Model.predict_proba = lambda self, frame: np.array([[0.5, 0.5]] * len(frame))  # type: ignore[method-assign]
    np.testing.assert_array_equal(m.predict_proba(pd.DataFrame({"u": ["x"]})), [[0.5, 0.5]])
    assert len(calls) == inner_calls
