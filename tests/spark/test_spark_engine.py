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
def spark(tmp_path_factory):
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("trusteq-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.python.worker.reuse", "true")
               # the catalog's folder (spark-warehouse/) and Derby's files go to tmp, never the working directory
               .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
               .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={tmp_path_factory.mktemp('derby')}")
               .getOrCreate())
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
        # parent_cache=False: a cache hit would reuse the first run's partitioning
        out[parts] = compare_spark(parent, candidate, sdf, targets="label", row_key="id", n_resamples=RESAMPLES,
                                   spark=spark, parent_cache=False)
    return out


def test_point_estimates_equal_single_process_compare(reference, by_partitions):
    rep = by_partitions[3]
    assert rep.n_examples == reference.n_examples == N_ROWS
    assert set(rep.metrics) == set(reference.metrics)
    from mlflow_trusteq.metrics.update import UPDATE_KEYS

    aurc = {k for k in UPDATE_KEYS if k.endswith("aurc")}
    for key, est in reference.metrics.items():
        if key in TIMED or key in aurc:
            continue
        assert rep.metrics[key].value == pytest.approx(est.value, abs=1e-9, rel=1e-9), key
    # the counted update metrics come from the whole table (the same counts, so the same Wilson bounds)
    for key in ("backward_trust_compatibility", "backward_error_compatibility", "wrong_to_other_wrong_rate"):
        assert (rep.metrics[key].lower, rep.metrics[key].upper) == pytest.approx(
            (reference.metrics[key].lower, reference.metrics[key].upper), abs=1e-12), key
    for key in ("n_examples", "negative_flips", "positive_flips", "wrong_to_other_wrong", "mcnemar"):
        assert rep.settings["update"][key] == reference.settings["update"][key], key
    # the AURCs are not merged sums: measured on the engine's sample, and recorded so
    assert rep.settings["update"]["measured_on"].startswith("all 100000 rows (merged counts)")
    assert "AURCs on the Spark engine's sample of 2000 rows" in rep.settings["update"]["measured_on"]
    assert "update" not in rep.skipped
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
                                bootstrap="poisson", n_resamples=40, spark=spark, parent_cache=False) for p in (1, 8))
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


def _run_keys(run_id):
    from mlflow import MlflowClient

    client = MlflowClient()

    def artifacts(path=None):
        out = set()
        for a in client.list_artifacts(run_id, path):
            out |= artifacts(a.path) if a.is_dir else {a.path}
        return out

    return set(client.get_run(run_id).data.metrics), artifacts()


def test_mlflow_evaluate_judges_the_whole_spark_dataframe(spark, table, registry, monkeypatch):
    """A Spark DataFrame built in code, through mlflow.models.evaluate: all of it, not MLflow's first 10,000 rows.

    The same metric keys, artifacts and signed verdict as the same rows as a pandas DataFrame.
    """
    import secrets

    import mlflow
    from mlflow import MlflowClient

    from mlflow_trusteq.integration.registry import verify_verdict

    monkeypatch.setenv("TRUSTEQ_SIGNING_KEY", secrets.token_hex(32))
    _, _, df, _ = table
    rows = df[df["id"] < 12_000].drop(columns="id").reset_index(drop=True)
    config = {"parent": "models:/spark-pair/1", "n_resamples": 20}
    outcomes = {}
    for engine, data in (("spark", spark.createDataFrame(rows).repartition(3)), ("local", rows)):
        with mlflow.start_run() as run:
            result = mlflow.models.evaluate("models:/spark-pair/2", data, model_type="classifier", targets="label",
                                            evaluators="trusteq", evaluator_config=config)
        report = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/trusteq/report.json"))
        tags = MlflowClient().get_model_version("spark-pair", "2").tags
        decision = verify_verdict(MlflowClient(), "spark-pair", "2")
        outcomes[engine] = (run.info.run_id, result, report, tags, decision)
    run_s, result_s, report_s, tags_s, decision_s = outcomes["spark"]
    run_l, result_l, report_l, tags_l, decision_l = outcomes["local"]
    assert report_s["n_examples"] == report_l["n_examples"] == 12_000  # not MLflow's 10,000
    assert report_s["data_digest"].startswith("spark-rowhash-v1:")
    assert report_s["settings"]["engine"]["name"] == "spark"
    assert report_s["settings"]["engine"]["partitions"] == 3
    # the same metrics, artifacts and version tags, and a verdict whose signature holds
    assert _run_keys(run_s) == _run_keys(run_l)
    assert set(result_s.metrics) == set(result_l.metrics)
    assert set(tags_s) == set(tags_l)
    assert tags_s["trusteq.run_id"] == run_s and tags_l["trusteq.run_id"] == run_l
    assert decision_s.signature_valid and decision_l.signature_valid
    assert result_s.metrics["trusteq/label_loyalty"] == pytest.approx(result_l.metrics["trusteq/label_loyalty"],
                                                                       abs=1e-12)


def test_a_cut_table_trusteq_cannot_reach_is_refused_with_the_way_out(spark, table, registry):
    import mlflow

    from mlflow_trusteq.spark import table_behind_cut_dataset

    _, _, _, path = table
    sdf = spark.read.parquet(path).filter("id < 12000")
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_spark(sdf), context="eval")  # built in code: no source to read again
    # outside mlflow.models.evaluate there is no frame on the stack, and the logged dataset has no source
    with pytest.raises(InvalidInputError, match="kept only the first 10,000 rows") as err:
        table_behind_cut_dataset(run.info.run_id, 10_000, dataset=mlflow.data.from_spark(sdf))
    assert "engine" in str(err.value) and "from_spark" in str(err.value)
    # with a source MLflow can read again, the whole table comes back
    with mlflow.start_run() as run:
        # (another name: MLflow keeps one dataset per name and digest in an experiment, the first one's source)
        mlflow.log_input(mlflow.data.from_spark(sdf, path=path, name="requests_by_path"), context="eval")
    whole = table_behind_cut_dataset(run.info.run_id, 10_000)
    assert whole is not None and whole.count() == N_ROWS
    assert table_behind_cut_dataset(run.info.run_id, 9_999) is None  # nothing was cut


def test_trusteq_evaluate_engine_spark_on_a_table_name(spark, table, registry):
    """``trusteq evaluate --engine spark --data <table name>`` in the session's catalog (local[2])."""
    from click.testing import CliRunner

    from mlflow_trusteq.cli import cli

    _, _, _, path = table
    spark.read.parquet(path).filter("id < 15000").drop("id").createOrReplaceTempView("requests_sample")
    res = CliRunner().invoke(cli, ["evaluate", "models:/spark-pair/2", "--parent", "models:/spark-pair/1",
                                   "--engine", "spark", "--data", "requests_sample", "--label-column", "label",
                                   "--no-record", "--n-resamples", "20", "--json"])
    assert res.exit_code in (0, 1), res.output
    out = json.loads(res.stdout)
    assert out["n_examples"] == 15_000 and out["data_digest"].startswith("spark-rowhash-v1:")


def test_trusteq_evaluate_engine_spark_from_the_shell(table, registry, tmp_path):
    """The real command in a fresh process: its own SparkSession (local[2]), a Parquet folder, a signed verdict."""
    import secrets

    _, _, df, _ = table
    path = tmp_path / "requests.parquet"
    df[df["id"] < 15_000].drop(columns="id").to_parquet(path, index=False)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{registry / 'mlflow.db'}",
           "TRUSTEQ_SIGNING_KEY": secrets.token_hex(32), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.ui.enabled=false pyspark-shell"}
    trusteq = os.path.join(os.path.dirname(sys.executable), "trusteq")
    res = subprocess.run([trusteq, "evaluate", "models:/spark-pair/2", "--parent", "models:/spark-pair/1",
                          "--engine", "spark", "--data", str(path), "--label-column", "label", "--n-resamples", "20",
                          "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["n_examples"] == 15_000 and out["data_digest"].startswith("spark-rowhash-v1:")
    assert out["recorded"] is True
    assert not (tmp_path / "mlflow.db").exists()  # it logged where MLFLOW_TRACKING_URI points


class CountingModel:
    """A real scikit-learn classifier that appends ``<pid> <rows>`` to a file each time it scores."""

    def __init__(self, model=None, log=None):
        self.model, self.log = model, log

    def get_params(self, deep=True):
        return {"model": self.model, "log": self.log}

    def fit(self, X, y):
        return self

    @property
    def classes_(self):
        return self.model.classes_

    def predict(self, X):
        return self.model.predict(X)

    def predict_proba(self, X):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} {len(X)}\n")
        return self.model.predict_proba(X)


def _executor_rows(log):
    """Rows the model scored outside this (the driver's) process: in the Spark workers."""
    if not log.exists():
        return 0
    lines = [line.split() for line in log.read_text().splitlines()]
    return sum(int(n) for pid, n in lines if int(pid) != os.getpid())


def test_a_second_candidate_on_the_same_table_does_not_score_the_parent_again(spark, table, tmp_path, caplog):
    import logging

    from pyspark import cloudpickle

    from mlflow_trusteq import _cache

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    parent, candidate, _, path = table
    from sklearn.linear_model import LogisticRegression

    other = LogisticRegression(C=0.05, max_iter=500).fit(*_train(table))
    log = tmp_path / "parent_calls.txt"
    counting = CountingModel(parent, str(log))
    sdf = spark.read.parquet(path).filter("id < 20000").repartition(2)
    caplog.set_level(logging.INFO, logger="mlflow_trusteq._cache")
    _cache.clear()
    try:
        first = compare_spark(counting, candidate, sdf, targets="label", row_key="id", n_resamples=20, spark=spark)
        assert _executor_rows(log) == 20_000
        second = compare_spark(counting, other, sdf, targets="label", row_key="id", n_resamples=20, spark=spark)
        assert _executor_rows(log) == 20_000, "the parent was scored again"
        assert sum("parent cache hit" in r.message for r in caplog.records) == 1
        assert second.settings["parent_scores"].startswith("cached") and "parent_scores" not in first.settings
        # the same numbers as without the cache, which scores the parent again
        fresh = compare_spark(counting, other, sdf, targets="label", row_key="id", n_resamples=20, spark=spark,
                              parent_cache=False)
        assert _executor_rows(log) == 40_000
        assert second.data_digest == fresh.data_digest
        for key, est in fresh.metrics.items():
            if key not in TIMED:
                assert second.metrics[key] == est, key
        # other rows are another entry: scored
        compare_spark(counting, other, sdf.filter("id < 15000"), targets="label", row_key="id", n_resamples=20,
                      spark=spark)
        assert _executor_rows(log) == 55_000
        assert _cache.stats()["tables"] == 2
    finally:
        _cache.clear()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _train(table):
    """The parent's training rows again (the table fixture's first 2,000)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=N_ROWS + 2000, n_features=8, n_informative=5, n_classes=3, random_state=0)
    return pd.DataFrame(X[:2000], columns=[f"f{i}" for i in range(8)]), y[:2000]


def test_slices_are_measured_on_the_engines_sample_and_a_policy_judges_them(spark, table):
    """Slices on Spark: a column that is not a feature travels with the sample; the numbers are
    measure_slices' on the sampled rows, recorded as measured on the sample, and a slice policy
    judges them (on the old code the section was skipped and the policy failed closed)."""
    from pyspark.sql import functions as F

    from mlflow_trusteq import Policy
    from mlflow_trusteq.slices import measure_slices

    parent, candidate, _, path = table
    features = [f"f{i}" for i in range(8)]
    sdf = spark.read.parquet(path).withColumn("segment", F.when(F.col("f0") > 0, "pos").otherwise("neg"))
    rep = compare_spark(parent, candidate, sdf, targets="label", row_key="id", n_resamples=50, spark=spark,
                        feature_columns=features, slices=["segment", "parent_class"], sample_size=4000,
                        parent_cache=False)
    assert "slices" not in rep.skipped
    result = rep.slices()
    assert result.settings["measured_on"].startswith("the Spark engine's sample of 4000 rows")
    pred = rep.predictions
    frame = pred.records.assign(segment=np.where(pred.records["f0"] > 0, "pos", "neg"))
    from mlflow_trusteq.compare import _METRIC_SETTING_NAMES

    cfg = TrustEqConfig(n_resamples=50)
    ref = measure_slices(frame, pred.records, "tabular", pred.parent, pred.candidate, pred.targets, rep.labels,
                         ["segment", "parent_class"],
                         options={k: getattr(cfg, v) for k, v in _METRIC_SETTING_NAMES.items()})
    assert [s.name for s in result.slices] == [s.name for s in ref.slices] and len(ref.slices) == 5
    for ours, theirs in zip(result.slices, ref.slices):
        assert ours.n == theirs.n and ours.estimates["label_loyalty"] == theirs.estimates["label_loyalty"]
    policy = Policy.from_dict({"name": "slices", "checks": {"label_loyalty": {"threshold": 0.5, "slices": "all"}}})
    verdict = policy.judge(rep)
    slice_check = [c for c in verdict.checks if "slices" in c.metric]
    assert slice_check and all(c.status in ("pass", "fail") for c in slice_check), slice_check
    # a bad spec is an error before anything is measured (it used to come after the whole table was scored)
    measured = []
    for specs, match in ((["nope"], "slice column"), (["input_length"], "needs text inputs"),
                         (["segment:4"], "only a numeric column can be binned")):
        with pytest.raises(InvalidInputError, match=match):
            compare_spark(parent, candidate, sdf, targets="label", feature_columns=features, slices=specs,
                          spark=spark, before_measuring=lambda s=specs: measured.append(s))
    assert measured == []
