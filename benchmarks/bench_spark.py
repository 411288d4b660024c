"""The Spark engine on ``local[2]`` against single-process compare(), and the parent cache.

Measured in one run, side by side, on the same synthetic tabular rows (8 features, 2 classes, a
scikit-learn pair: a gradient-boosted parent and a logistic-regression candidate):

- rows/s of :func:`mlflow_trusteq.spark.compare_spark` on ``local[2]`` (data read from Parquet) and
  of single-process :func:`mlflow_trusteq.compare` (data in memory), for each size;
- the peak memory of each, every measurement in a fresh process: for compare() its ``ru_maxrss``;
  for Spark the peak of the summed resident memory of the whole process tree (driver Python, JVM,
  Python workers), sampled every 0.2 s from ``/proc``;
- the time to evaluate 3 candidates against one parent with three separate compare() calls, with and
  without the parent cache (``parent_cache=False``).

    python benchmarks/bench_spark.py [--sizes 1000000 10000000] [--resamples 200]

Writes ``benchmarks/results/spark.json`` and ``spark.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
D = 8


def make_chunk(start: int, n: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng([seed, start])
    X = rng.normal(size=(n, D))
    logits = X[:, 0] + 0.5 * X[:, 1] - 0.25 * X[:, 2] * X[:, 3] + rng.normal(scale=0.8, size=n)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(D)])
    df["label"] = (logits > 0).astype(np.int64)
    return df


def write_parquet(folder: Path, n: int, chunk: int = 1_000_000) -> Path:
    """``n`` rows as a Parquet folder of 1M-row files (written chunk by chunk: memory stays flat)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, n, chunk)):
        make_chunk(start, min(chunk, n - start)).to_parquet(folder / f"part-{i:05d}.parquet", index=False)
    return folder


def models(folder: Path):
    """Fit the pair once and save them as MLflow model folders (the form that ships to executors)."""
    import mlflow.sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    train = make_chunk(10**12, 20_000, seed=1)
    X, y = train.drop(columns="label"), train["label"]
    paths = {}
    fitted = {"parent": HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X, y),
              **{f"candidate{i}": LogisticRegression(C=c).fit(X, y) for i, c in enumerate((1.0, 0.1, 0.01))}}
    for name, est in fitted.items():
        paths[name] = str(folder / name)
        mlflow.sklearn.save_model(est, paths[name], skops_trusted_types=[
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"])
    return paths


# ----------------------------------------------------------------------------- children (fresh processes)
def child_local(data: str, parent: str, candidate: str, resamples: int) -> dict:
    import pandas as pd

    from mlflow_trusteq import compare

    df = pd.read_parquet(data)
    t0 = time.perf_counter()
    rep = compare(parent, candidate, df, targets="label", n_resamples=resamples, parent_cache=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": rep.n_examples, "label_loyalty": rep.value("label_loyalty"),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_spark(data: str, parent: str, candidate: str, resamples: int) -> dict:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    from mlflow_trusteq.spark import compare_spark

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4").config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.memory", "2g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        sdf = spark.read.parquet(data)
        t0 = time.perf_counter()
        rep = compare_spark(parent, candidate, sdf, targets="label", n_resamples=resamples, spark=spark)
        seconds = time.perf_counter() - t0
    finally:
        spark.stop()
    return {"seconds": seconds, "rows": rep.n_examples, "label_loyalty": rep.value("label_loyalty"),
            "partitions": rep.settings["engine"]["partitions"]}


def child_cache(data: str, parent: str, candidates: list[str], resamples: int) -> dict:
    import pandas as pd

    from mlflow_trusteq import _cache, compare

    df = pd.read_parquet(data)
    out = {}
    for label, cached in (("without_cache", False), ("with_cache", True)):
        _cache.clear()
        t0 = time.perf_counter()
        for c in candidates:
            compare(parent, c, df, targets="label", n_resamples=resamples, parent_cache=cached)
        out[label] = time.perf_counter() - t0
        out[f"{label}_stats"] = _cache.stats()
    return out


def _tree_rss_bytes(root: int) -> int:
    """Summed VmRSS of ``root`` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss[int(entry)] = int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    return sum(rss.get(p, 0) for p in tree)


def run_child(kind: str, *args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, json.dumps(list(args))]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_bytes(proc.pid))
            done.wait(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, _ = proc.communicate()
    done.set()
    t.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_tree_rss_mib"] = peak[0] / 2**20
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--cache-rows", type=int, default=1_000_000)
    ap.add_argument("--skip-local-above", type=int, default=10_000_000,
                    help="run single-process compare() only up to this many rows")
    ap.add_argument("--out", default="spark", help="results file stem under benchmarks/results/")
    ap.add_argument("--child")
    ap.add_argument("args", nargs="?")
    a = ap.parse_args()
    if a.child:
        fn = {"local": child_local, "spark": child_spark, "cache": child_cache}[a.child]
        print(json.dumps(fn(*json.loads(a.args))))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_spark_") as tmp:
        paths = models(Path(tmp) / "models")
        for n in a.sizes:
            data = str(write_parquet(Path(tmp) / f"rows_{n}", n))
            row = {"rows": n}
            row["spark"] = run_child("spark", data, paths["parent"], paths["candidate0"], a.resamples)
            if n <= a.skip_local_above:
                row["local"] = run_child("local", data, paths["parent"], paths["candidate0"], a.resamples)
                assert abs(row["local"]["label_loyalty"] - row["spark"]["label_loyalty"]) < 1e-9
            rows.append(row)
            print(json.dumps(row), flush=True)
        cache_n = a.cache_rows
        data = str(Path(tmp) / f"rows_{cache_n}") if cache_n in a.sizes else str(write_parquet(
            Path(tmp) / f"rows_{cache_n}", cache_n))
        cache = run_child("cache", data, paths["parent"], [paths[f"candidate{i}"] for i in range(3)], a.resamples)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_at_end": os.getloadavg()},
              "n_resamples": a.resamples, "sizes": rows, "parent_cache": {"rows": cache_n, **cache}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{a.out}.json").write_text(json.dumps(result, indent=2))
    lines = ["# Spark engine (local[2]) vs single-process compare(), and the parent cache", "",
             f"{os.cpu_count()} CPUs (shared; load average at the end {os.getloadavg()[0]:.1f}), "
             f"{a.resamples} resamples, parent HistGradientBoosting (100 trees) vs logistic regression, "
             "models as MLflow model folders, data from Parquet.", "",
             "| rows | Spark rows/s | compare() rows/s | Spark / compare() | Spark peak MiB (tree) | "
             "compare() peak MiB |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s, loc = r["spark"], r.get("local")
        s_rate = r["rows"] / s["seconds"]
        if loc:
            l_rate = r["rows"] / loc["seconds"]
            lines.append(f"| {r['rows']:,} | {s_rate:,.0f} | {l_rate:,.0f} | {s_rate / l_rate:.2f} | "
                         f"{s['peak_tree_rss_mib']:,.0f} | {loc['peak_tree_rss_mib']:,.0f} |")
        else:
            lines.append(f"| {r['rows']:,} | {s_rate:,.0f} | not run | | {s['peak_tree_rss_mib']:,.0f} | |")
    lines += ["", f"3 candidates against one parent on {cache_n:,} rows, three separate compare() calls: "
              f"{cache['without_cache']:.1f} s without the parent cache, {cache['with_cache']:.1f} s with it "
              f"({cache['without_cache'] / cache['with_cache']:.2f}x)."]
    (RESULTS / f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
