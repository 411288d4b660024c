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

``local[2]`` gets ``spark.driver.memory`` 6g (``BENCH_SPARK_DRIVER_MEMORY`` to change it): in local mode
that heap runs the executors and holds the persisted scores, and with 2g the 10M-row run dies.

Writes ``benchmarks/results/spark.json`` and ``spark.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
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


def _local2():
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4").config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.memory", os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "6g"))
             .config("spark.local.dir", tempfile.gettempdir()).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def child_spark(data: str, parent: str, candidate: str, resamples: int) -> dict:
    from mlflow_trusteq.spark import compare_spark

    spark = _local2()
    driver_memory = spark.conf.get("spark.driver.memory")
    try:
        sdf = spark.read.parquet(data)
        t0 = time.perf_counter()
        rep = compare_spark(parent, candidate, sdf, targets="label", n_resamples=resamples, spark=spark,
                            parent_cache=False,  # one candidate: the plain engine (the cache is measured apart)
                            quantile_relative_error=float(os.environ.get("BENCH_QUANTILE_ERROR", "0")))
        seconds = time.perf_counter() - t0
    finally:
        spark.stop()
    return {"seconds": seconds, "rows": rep.n_examples, "label_loyalty": rep.value("label_loyalty"),
            "partitions": rep.settings["engine"]["partitions"],
            "quantile_relative_error": rep.settings["engine"]["quantile_relative_error"],
            "driver_memory": driver_memory}


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


def child_spark_cache(data: str, parent: str, candidates: list[str], resamples: int) -> dict:
    """Three compare_spark() calls with one parent in one SparkSession, with and without the parent cache."""
    from mlflow_trusteq import _cache
    from mlflow_trusteq.spark import compare_spark

    spark = _local2()
    out: dict = {}
    try:
        for label, cached in (("without_cache", False), ("with_cache", True)):
            _cache.clear()
            t0 = time.perf_counter()
            for c in candidates:
                compare_spark(parent, c, data, targets="label", n_resamples=resamples, parent_cache=cached,
                              spark=spark)
            out[label] = time.perf_counter() - t0
            out[f"{label}_stats"] = _cache.stats()
    finally:
        spark.stop()
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


def run_child(kind: str, *args, timeout: float | None = None, max_mib: int | None = None) -> dict:
    """Run one measurement in a fresh process; its peak tree RSS, and the load average while it ran.

    ``timeout``: seconds after which the child (and its process group) is stopped, and the result
    says so (``finished: false``) with the memory it had reached. ``max_mib``: its address-space
    limit (``RLIMIT_AS``): past it the child fails with ``MemoryError``, and the result says so.
    """
    cmd = [sys.executable, __file__, "--child", kind, json.dumps(list(args))]
    if max_mib:
        cmd[2:2] = ["--max-mib", str(max_mib)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = [0]
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_bytes(proc.pid))
            loads.append(os.getloadavg()[0])
            done.wait(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    try:
        out, err = proc.communicate(timeout=timeout)
        finished = True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's own group: it and its JVM / Python workers
        out, err = proc.communicate()
        finished = False
    done.set()
    t.join()
    common = {"peak_tree_rss_mib": peak[0] / 2**20, "wall_seconds": time.perf_counter() - t0,
              "load_average_1min_mean": float(np.mean(loads)) if loads else None}
    if not finished:
        return {"finished": False, "stopped_after_seconds": timeout, **common}
    if proc.returncode != 0:
        tail = (err or "").strip().splitlines()[-3:]
        if any("MemoryError" in line for line in tail):
            return {"finished": False, "memory_error_at_limit_mib": max_mib, **common}
        # a failed measurement is a result (and must not lose the others): what it said last, and its errors
        errors = [line.strip() for line in (err or "").splitlines() if "Error" in line or "Exception" in line]
        return {"finished": False, "failed": f"exit {proc.returncode}: {' | '.join(tail)}"[:1000],
                "errors": errors[-20:], **common}
    result = json.loads(out.strip().splitlines()[-1])
    return {"finished": True, **result, **common}


def _rate(r: dict, who: str) -> str:
    m = r.get(who)
    if not m:
        return "not run"
    if m.get("finished", True):
        return f"{r['rows'] / m['seconds']:,.0f}"
    if m.get("failed"):
        return f"failed after {m['wall_seconds'] / 60:.0f} min"
    if m.get("memory_error_at_limit_mib"):
        return f"MemoryError at {m['memory_error_at_limit_mib'] / 1024:.0f} GiB"
    limit = m["stopped_after_seconds"]
    return f"unfinished after {limit / 60:.0f} min (< {r['rows'] / limit:,.0f})"


def write_results(result: dict, out: str) -> None:
    rows, cache = result["sizes"], result.get("parent_cache")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps(result, indent=2))
    lines = ["# Spark engine (local[2]) vs single-process compare(), and the parent cache", "",
             f"{result['machine']['cpus']} CPUs shared with other jobs (the load average while each measurement "
             f"ran is in the table), {result['n_resamples']} resamples, parent HistGradientBoosting (100 trees) vs "
             "logistic regression, models as MLflow model folders, data from Parquet. Each cell is a fresh process.",
             "", "| rows | run | concurrent | Spark rows/s | compare() rows/s | Spark / compare() "
             "| Spark peak MiB (tree) | compare() peak MiB | load (Spark / compare()) |",
             "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        s, loc = r["spark"], r.get("local") or {}
        both = s.get("finished", True) and bool(loc) and loc.get("finished", True)
        ratio = f"{loc['seconds'] / s['seconds']:.2f}" if both else ""
        load = " / ".join("" if m.get("load_average_1min_mean") is None else f"{m['load_average_1min_mean']:.1f}"
                          for m in (s, loc) if m)
        lines.append(f"| {r['rows']:,} | {r.get('run', '')} | {'yes' if r.get('concurrent') else 'no'} | "
                     f"{_rate(r, 'spark')} | {_rate(r, 'local')} | {ratio} | {s['peak_tree_rss_mib']:,.0f} | "
                     f"{format(loc['peak_tree_rss_mib'], ',.0f') if loc else ''} | {load} |")
    if cache:
        lines += ["", f"3 candidates against one parent on {cache['rows']:,} rows, three separate compare() calls: "
                  f"{cache['without_cache']:.1f} s without the parent cache, {cache['with_cache']:.1f} s with it "
                  f"({cache['without_cache'] / cache['with_cache']:.2f}x)."]
    spark_cache = result.get("spark_parent_cache")
    if spark_cache:
        lines += ["", f"The same on the Spark engine ({spark_cache['rows']:,} rows, local[2], three compare_spark() "
                  f"calls in one session): {spark_cache['without_cache']:.1f} s without the parent cache, "
                  f"{spark_cache['with_cache']:.1f} s with it "
                  f"({spark_cache['without_cache'] / spark_cache['with_cache']:.2f}x)."]
    for note in result.get("notes", []):
        lines += ["", note]
    (RESULTS / f"{out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _measure_size(n: int, data: str, paths: dict, a: argparse.Namespace) -> dict:
    """Spark and compare() on ``n`` rows: one after the other, or at the same time (``--concurrent``)."""
    from concurrent.futures import ThreadPoolExecutor

    row: dict = {"rows": n, "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "concurrent": a.concurrent}
    jobs = {"spark": ("spark", data, paths["parent"], paths["candidate0"], a.resamples)}
    if n <= a.skip_local_above:
        jobs["local"] = ("local", data, paths["parent"], paths["candidate0"], a.resamples)
    limits = {"spark": None, "local": a.local_max_mib}
    with ThreadPoolExecutor(max_workers=len(jobs) if a.concurrent else 1) as pool:
        futures = {who: pool.submit(run_child, *args, timeout=a.child_timeout, max_mib=limits[who])
                   for who, args in jobs.items()}
        row.update({who: f.result() for who, f in futures.items()})
    loc, spk = row.get("local", {}), row["spark"]
    if loc.get("finished") and spk.get("finished") and not spk.get("quantile_relative_error"):
        assert abs(loc["label_loyalty"] - spk["label_loyalty"]) < 1e-9
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--cache-rows", type=int, default=1_000_000, help="0: skip the parent-cache measurement")
    ap.add_argument("--spark-cache-rows", type=int, default=0,
                    help="rows of the parent-cache measurement on the Spark engine (0: skip it)")
    ap.add_argument("--skip-local-above", type=int, default=10_000_000,
                    help="run single-process compare() only up to this many rows")
    ap.add_argument("--child-timeout", type=float, default=None, help="stop a measurement after this many seconds")
    ap.add_argument("--local-max-mib", type=int, default=None, help="address-space limit of the compare() child")
    ap.add_argument("--concurrent", action="store_true",
                    help="run the Spark and the compare() measurement of a size at the same time")
    ap.add_argument("--merge", action="store_true",
                    help="keep the earlier results file's other sizes and parts (each row records its run)")
    ap.add_argument("--note", action="append", default=[], help="a line added under the table")
    ap.add_argument("--out", default="spark", help="results file stem under benchmarks/results/")
    ap.add_argument("--child")
    ap.add_argument("--max-mib", type=int)
    ap.add_argument("args", nargs="?")
    a = ap.parse_args()
    if a.child:
        if a.max_mib:
            resource.setrlimit(resource.RLIMIT_AS, (a.max_mib * 2**20, a.max_mib * 2**20))
        fn = {"local": child_local, "spark": child_spark, "cache": child_cache,
              "spark_cache": child_spark_cache}[a.child]
        print(json.dumps(fn(*json.loads(a.args))))
        return
    earlier = json.loads((RESULTS / f"{a.out}.json").read_text()) if a.merge else {}
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_at_start": os.getloadavg()},
              "n_resamples": a.resamples, "sizes": [], **{k: earlier[k] for k in ("parent_cache",
                                                                                 "spark_parent_cache")
                                                         if k in earlier}}
    with tempfile.TemporaryDirectory(prefix="bench_spark_") as tmp:
        paths = models(Path(tmp) / "models")
        for n in a.sizes:
            row = _measure_size(n, str(write_parquet(Path(tmp) / f"rows_{n}", n)), paths, a)
            result["sizes"].append(row)
            print(json.dumps(row), flush=True)
        for key, n, kind in (("parent_cache", a.cache_rows, "cache"), ("spark_parent_cache", a.spark_cache_rows,
                                                                      "spark_cache")):
            if n:
                data = Path(tmp) / f"rows_{n}"
                data = data if data.exists() else write_parquet(data, n)
                result[key] = {"rows": n, **run_child(kind, str(data), paths["parent"],
                                                      [paths[f"candidate{i}"] for i in range(3)], a.resamples)}
    measured = {r["rows"] for r in result["sizes"]}
    result["sizes"] = sorted(result["sizes"] + [r for r in earlier.get("sizes", []) if r["rows"] not in measured],
                             key=lambda r: r["rows"])
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["notes"] = earlier.get("notes", []) + a.note
    write_results(result, a.out)


if __name__ == "__main__":
    main()
