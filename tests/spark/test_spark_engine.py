"""The Spark engine against single-process ``compare()``, on real pyspark (``local[2]``) and real models.

One SparkSession for the module (fixture-scoped, stopped at the end), bound to 127.0.0.1, no UI.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq import InvalidInputError, MissingDependencyError, TrustEqConfig, compare

pyspark = pytest.importorskip("pyspark", reason="pip install 'mlflow-trusteq[spark]'")

from mlflow_trusteq.spark import (  # noqa: E402
    compare_spark,
    exact_mass_edges,
    partial_summary,
    poisson_weights,
    summary_from_partials,
)

pytestmark = [pytest.mark.slow,
              # pyspark's own notes about pandas 3, not ours
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

N_ROWS = 100_000
RESAMPLES = 100
#: numbers that are times, not measurements of the data
TIMED = {"parent/throughput", "candidate/throughput", "speedup", "parent/latency", "candidate/latency"}


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("trusteq-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.python.worker.reuse", "true").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """100,000 rows of a 3-class tabular problem, a parent and a weaker candidate (scikit-learn)."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=N_ROWS + 2000, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    cols = [f"f{i}" for i in range(8)]
    train = pd.DataFrame(X[:2000], columns=cols)
    parent = LogisticRegression(max_iter=500).fit(train, y[:2000])
    candidate = LogisticRegression(C=0.005, max_iter=500).fit(train, y[:2000])
    df = pd.DataFrame(X[2000:], columns=cols)
    df["label"] = y[2000:]
    df.insert(0, "id", np.arange(N_ROWS, dtype=np.int64))
    path = tmp_path_factory.mktemp("spark_table") / "rows.parquet"
    df.to_parquet(path, index=False)
    return parent, candidate, df, str(path)


@pytest.fixture(scope="module")
def reference(table):
    parent, candidate, df, _ = table
    return compare(parent, candidate, df.drop(columns="id"), targets="label", n_resamples=RESAMPLES)


@pytest.fixture(scope="module")
def by_partitions(spark, table):
    parent, candidate, _, path = table
    out = {}
    for parts in (1, 3, 8):
        sdf = spark.read.parquet(path).repartition(parts)
        out[parts] = compare_spark(parent, candidate, sdf, targets="label", row_key="id", n_resamples=RESAMPLES,
                                   spark=spark)
    return out


def test_point_estimates_equal_single_process_compare(reference, by_partitions):
    rep = by_partitions[3]
    assert rep.n_examples == reference.n_examples == N_ROWS
    assert set(rep.metrics) == set(reference.metrics)
    for key, est in reference.metrics.items():
        if key in TIMED:
            continue
        assert rep.metrics[key].value == pytest.approx(est.value, abs=1e-9, rel=1e-9), key
    assert rep.flip_matrix == reference.flip_matrix
    np.testing.assert_allclose(rep.per_class_loyalty, reference.per_class_loyalty, atol=1e-12)
    for model in ("parent", "candidate"):
        for scheme in ("equal_width", "equal_mass"):
            ours, theirs = rep.reliability[model][scheme], reference.reliability[model][scheme]
            assert ours["counts"] == theirs["counts"], (model, scheme)
            np.testing.assert_allclose(ours["edges"], theirs["edges"], atol=1e-12)
    assert rep.settings["engine"]["name"] == "spark" and rep.settings["engine"]["equal_mass_edge_rank_bound"] == 0
    assert rep.settings["metrics"]["bootstrap"].startswith("groups(2000)")
    assert rep.labels == reference.labels and rep.kind == "tabular"
    # the sections' sample: drawn by the engine, its size and seed recorded
    assert rep.settings["engine"]["sample_size"] == len(rep.predictions.records) == 2000
    assert rep.settings["engine"]["sample_seed"] == 0


def test_same_result_for_1_3_and_8_partitions(by_partitions):
    one = by_partitions[1]
    assert [by_partitions[p].settings["engine"]["partitions"] for p in (1, 3, 8)] == [1, 3, 8]
    for parts in (3, 8):
        other = by_partitions[parts]
        assert other.data_digest == one.data_digest
        for key, est in one.metrics.items():
            if key in TIMED:
                continue
            o = other.metrics[key]
            assert o.value == pytest.approx(est.value, abs=1e-9), (parts, key)
            if est.lower is not None:
                assert o.lower == pytest.approx(est.lower, abs=1e-9), (parts, key)
                assert o.upper == pytest.approx(est.upper, abs=1e-9), (parts, key)
        pd.testing.assert_frame_equal(other.predictions.records, one.predictions.records)


def test_poisson_bootstrap_is_the_same_for_1_and_8_partitions(spark, table):
    parent, candidate, _, path = table
    sdf = spark.read.parquet(path).filter("id < 12000")
    one, eight = (compare_spark(parent, candidate, sdf.repartition(p), targets="label", row_key="id",
                                bootstrap="poisson", n_resamples=40, spark=spark) for p in (1, 8))
    assert one.settings["metrics"]["bootstrap"].startswith("poisson") and one.n_examples == 12_000
    for key, est in one.metrics.items():
        if key in TIMED or est.lower is None:
            continue
        assert (eight.metrics[key].lower, eight.metrics[key].upper) == pytest.approx((est.lower, est.upper),
                                                                                     abs=1e-9), key


def test_approximate_quantiles_keep_the_equal_mass_bins_within_the_logged_bound(spark, table, reference):
    parent, candidate, _, path = table
    rep = compare_spark(parent, candidate, path, targets="label", row_key="id", n_resamples=20,
                        quantile_relative_error=0.001, spark=spark)
    bound = rep.settings["engine"]["equal_mass_edge_rank_bound"]
    assert bound == math.ceil(0.001 * N_ROWS)
    for model in ("parent", "candidate"):
        ours = np.asarray(rep.reliability[model]["equal_mass"]["counts"])
        exact = np.asarray(reference.reliability[model]["equal_mass"]["counts"])
        assert ours.sum() == exact.sum() == N_ROWS
        # each bin is off by at most the rank error of its two edges
        assert np.abs(ours - exact).max() <= 2 * bound, model
    assert rep.value("label_loyalty") == pytest.approx(reference.value("label_loyalty"), abs=1e-12)


def test_interval_coverage_in_line_with_single_process():
    """Poisson intervals (the engine's partition code, merged) cover as often as compare()'s bootstrap."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from mlflow_trusteq.metrics import summarize_pair

    X, y = make_classification(n_samples=52_000, n_features=6, n_informative=4, random_state=1)
    parent = LogisticRegression().fit(X[:1000], y[:1000])
    candidate = LogisticRegression(C=0.003).fit(X[1000:2000], y[1000:2000])
    P, Q, Y = parent.predict_proba(X[2000:]), candidate.predict_proba(X[2000:]), y[2000:]
    keys = ["label_loyalty", "parent/accuracy", "diff/brier_loss", "probability_loyalty"]
    truth = summarize_pair(P, Q, Y, n_resamples=0).estimates
    cfg = TrustEqConfig(n_resamples=200, confidence=0.9)
    rng = np.random.default_rng(7)
    schemes = {"poisson": None, "groups": 100}  # the engine's two schemes; compare() with the matching one
    hits = {f"{a}/{b}": dict.fromkeys(keys, 0) for a in schemes for b in ("engine", "compare")}
    n_sims, n = 80, 600
    for sim in range(n_sims):
        idx = rng.choice(len(Y), size=n, replace=False)
        p, q, t = P[idx], Q[idx], Y[idx]
        edges = {"parent": exact_mass_edges(p.max(axis=1), cfg.n_bins_equal_mass),
                 "candidate": exact_mass_edges(q.max(axis=1), cfg.n_bins_equal_mass)}
        ids = idx.astype(np.uint64)
        half = n // 2
        sim_cfg = TrustEqConfig(n_resamples=200, confidence=0.9, random_state=sim)
        for scheme, groups in schemes.items():
            # two "partitions", merged, as the driver does
            parts = [partial_summary(p[s], q[s], t[s], ids[s], cfg=sim_cfg, mass_edges=edges, n_groups=groups)
                     for s in (slice(0, half), slice(half, n))]
            ours = summary_from_partials(parts[0].merge(parts[1]), cfg=sim_cfg, has_targets=True, mass_edges=edges,
                                         n_groups=groups).estimates
            theirs = summarize_pair(p, q, t, n_resamples=200, confidence=0.9, random_state=sim,
                                    bootstrap="examples" if groups is None else "groups",
                                    n_groups=groups or 2000).estimates
            for key in keys:
                v = truth[key].value
                hits[f"{scheme}/engine"][key] += ours[key].lower <= v <= ours[key].upper
                hits[f"{scheme}/compare"][key] += theirs[key].lower <= v <= theirs[key].upper
    for scheme in schemes:
        for key in keys:
            cov_e, cov_c = hits[f"{scheme}/engine"][key] / n_sims, hits[f"{scheme}/compare"][key] / n_sims
            assert 0.78 <= cov_e <= 0.98, (scheme, key, cov_e)
            assert abs(cov_e - cov_c) <= 0.08, (scheme, key, cov_e, cov_c)


def test_poisson_weights_depend_on_the_row_not_its_partition():
    keys = np.arange(1000, dtype=np.uint64) * np.uint64(7919)
    w = poisson_weights(keys, np.arange(50, dtype=np.uint64), seed=3)
    perm = np.random.default_rng(0).permutation(1000)
    np.testing.assert_array_equal(poisson_weights(keys[perm], np.arange(50, dtype=np.uint64), seed=3), w[:, perm])
    assert abs(w.mean() - 1.0) < 0.02 and abs(w.var() - 1.0) < 0.05  # Poisson(1)
    assert not np.array_equal(poisson_weights(keys, np.arange(50, dtype=np.uint64), seed=4), w)


def test_bad_input_names_the_problem(spark, table, tmp_path):
    parent, candidate, _, path = table
    sdf = spark.read.parquet(path)
    with pytest.raises(InvalidInputError, match="'nope'"):
        compare_spark(parent, candidate, sdf, targets="nope", spark=spark)
    with pytest.raises(InvalidInputError, match="feature column"):
        compare_spark(parent, candidate, sdf, targets="label", feature_columns=["f0", "zz"], spark=spark)
    not_a_table = tmp_path / "notes.txt"
    not_a_table.write_text("hello")
    with pytest.raises(InvalidInputError, match="could not be read"):
        compare_spark(parent, candidate, str(not_a_table), targets="label", spark=spark)
    with pytest.raises(InvalidInputError, match="neither an existing path nor a table"):
        compare_spark(parent, candidate, "no_such_table_xyz", targets="label", spark=spark)
    with pytest.raises(InvalidInputError, match="pandas"):
        compare_spark(parent, candidate, pd.DataFrame({"a": [1.0]}), spark=spark)


def test_without_pyspark_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlflow-trusteq\[spark\]'"):
        compare_spark(None, None, "t")


def test_importing_trusteq_never_imports_pyspark():
    code = ("import sys, mlflow_trusteq, mlflow_trusteq.spark, mlflow_trusteq._cache; "
            "assert 'pyspark' not in sys.modules, 'pyspark imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, table):
    """A sqlite MLflow store with the pair registered as models:/spark-pair/1 (parent) and /2 (candidate)."""
    import mlflow
    import mlflow.sklearn

    parent, candidate, _, _ = table
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("spark", artifact_location=(root / "a").as_uri()))
    with mlflow.start_run():
        for model in (parent, candidate):
            mlflow.sklearn.log_model(model, name="m", registered_model_name="spark-pair")
    yield root
    mlflow.set_tracking_uri(previous)


def test_mlflow_evaluate_never_judges_a_cut_spark_table(spark, table, registry):
    import mlflow

    _, _, _, path = table
    sub = str(registry / "rows_30k.parquet")
    spark.read.parquet(path).filter("id < 30000").drop("id").write.parquet(sub)
    config = {"parent": "models:/spark-pair/1", "record_verdict": False, "n_resamples": 20}
    # a DataFrame MLflow cannot read again: refused, and the message says how to evaluate all of it
    with mlflow.start_run(), pytest.raises(Exception, match="kept only the first 10,000 rows") as err:
        mlflow.models.evaluate("models:/spark-pair/2", spark.read.parquet(sub), model_type="classifier",
                               targets="label", evaluators="trusteq", evaluator_config=config)
    assert "engine" in str(err.value) and "from_spark" in str(err.value)
    # and from the shell: trusteq evaluate --engine spark, on the same Parquet folder
    from click.testing import CliRunner

    from mlflow_trusteq.cli import cli

    res = CliRunner().invoke(cli, ["evaluate", "models:/spark-pair/2", "--parent", "models:/spark-pair/1",
                                   "--engine", "spark", "--data", sub, "--label-column", "label", "--no-record",
                                   "--n-resamples", "20", "--json"])
    assert res.exit_code in (0, 1), res.output
    out = json.loads(res.stdout)
    assert out["n_examples"] == 30_000 and out["data_digest"].startswith("spark-rowhash-v1:")
