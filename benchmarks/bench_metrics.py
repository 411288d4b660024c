"""Speed and memory of ``summarize_pair`` against the naive example-level bootstrap.

For n in (10,000, 1,000,000) and k in (2, 3):

- ``summarize_pair`` with its defaults (1,000 paired resamples; examples up to 20,000, groups of
  2,000 above), wall time (best of a few runs) and peak traced memory (``tracemalloc``, which
  sees numpy's allocations);
- the naive alternative: for each resample, draw n indices and recompute every metric with the
  public single-metric functions (25 estimates). At n = 1,000,000 only ``NAIVE_RESAMPLES_1M``
  resamples are timed and the time is extrapolated linearly to 1,000 (said so in the table);
- the model-call time it is measured against: ``predict_proba`` of a parent and a candidate
  scikit-learn model (histogram gradient boosting, 100 vs 30 iterations; and logistic regression)
  on the same n rows of 20 tabular features.

Run: ``python benchmarks/bench_metrics.py`` (about two minutes on 2 cores). Prints a markdown
table and writes ``benchmarks/results/metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np

from mlflow_trusteq.metrics import (
    brier_loss,
    expected_calibration_error,
    label_loyalty_score,
    log_loss,
    max_calibration_error,
    negative_flip_rate,
    positive_flip_rate,
    probability_loyalty_score,
    summarize_pair,
)

NAIVE_RESAMPLES_1M = 20
N_RESAMPLES = 1000
RESULTS = Path(__file__).parent / "results" / "metrics.json"


def make_tabular(n: int, k: int, seed: int = 0):
    """A synthetic k-class tabular problem with 20 features, and two fitted models (parent, candidate)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    W = rng.normal(size=(20, k))
    X = rng.normal(size=(n, 20)).astype(np.float64)
    logits = X @ W + 0.5 * np.sin(3 * X[:, :k])
    y = (rng.random((n, 1)) > (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).cumsum(1)).sum(1)
    y = np.minimum(y, k - 1)
    m = min(n, 20_000)
    models = {
        "hgb": (HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X[:m], y[:m]),
                HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X[:m], y[:m])),
        "logreg": (LogisticRegression(max_iter=500).fit(X[:m], y[:m]),
                   LogisticRegression(C=0.01, max_iter=500).fit(X[:m], y[:m])),
    }
    return X, y, models


def best_times(fn, repeats: int) -> tuple[float, float]:
    """Best wall time and best process CPU time (all threads) of ``repeats`` runs.

    On a shared machine the CPU time is the steadier measure: it does not count time spent
    waiting for a core.
    """
    wall = cpu = float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu


def naive_bootstrap(P, Q, y, n_resamples: int, seed: int = 0) -> None:
    """Recompute every metric on each resample of the examples (what a straightforward loop does)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    for _ in range(n_resamples):
        i = rng.integers(0, n, n)
        p, q, t = P[i], Q[i], y[i]
        label_loyalty_score(p, q)
        probability_loyalty_score(p, q)
        negative_flip_rate(t, p, q)
        positive_flip_rate(t, p, q)
        for M in (p, q):
            np.mean(M.argmax(1) == t)
            for strategy, nb in (("equal_width", 15), ("equal_mass", 10)):
                expected_calibration_error(t, M, n_bins=nb, strategy=strategy)
                max_calibration_error(t, M, n_bins=nb, strategy=strategy)
            brier_loss(t, M)
            log_loss(t, M)


def peak_mib(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run_one(n: int, k: int) -> dict:
    X, y, models = make_tabular(n, k)
    calls = {name: best_times(lambda a=a, b=b: (a.predict_proba(X), b.predict_proba(X)), 2)
             for name, (a, b) in models.items()}
    call_s = {name: v[0] for name, v in calls.items()}
    call_cpu = {name: v[1] for name, v in calls.items()}
    parent, candidate = models["hgb"]
    P, Q = parent.predict_proba(X), candidate.predict_proba(X)
    X = None  # free the features before measuring memory
    summarize_pair(P, Q, y)  # warm-up
    ours_s, ours_cpu = best_times(lambda: summarize_pair(P, Q, y), 3)
    scheme = summarize_pair(P, Q, y, n_resamples=1).settings["bootstrap"]
    ours_mib = peak_mib(lambda: summarize_pair(P, Q, y))
    naive_r = NAIVE_RESAMPLES_1M if n > 100_000 else N_RESAMPLES
    t = time.perf_counter()
    naive_bootstrap(P, Q, y, naive_r)
    naive_s = (time.perf_counter() - t) * N_RESAMPLES / naive_r
    naive_mib = peak_mib(lambda: naive_bootstrap(P, Q, y, 2))
    return {
        "n": n, "k": k, "bootstrap": scheme, "n_resamples": N_RESAMPLES,
        "summarize_pair_s": ours_s, "summarize_pair_peak_mib": ours_mib,
        "naive_s": naive_s, "naive_resamples_timed": naive_r,
        "naive_extrapolated": naive_r != N_RESAMPLES, "naive_peak_mib": naive_mib,
        "speedup_vs_naive": naive_s / ours_s,
        "inputs_mib": (P.nbytes + Q.nbytes + y.nbytes) / 2**20,
        "model_call_s": call_s,
        "overhead_vs_model_call": {name: ours_s / s for name, s in call_s.items()},
        "summarize_pair_cpu_s": ours_cpu, "model_call_cpu_s": call_cpu,
        "overhead_vs_model_call_cpu": {name: ours_cpu / s for name, s in call_cpu.items()},
        "load_average_1min": os.getloadavg()[0],
    }


def run(sizes: tuple[int, ...], ks: tuple[int, ...]) -> list[dict]:
    return [run_one(n, k) for n in sizes for k in ks]


def markdown(rows: list[dict]) -> str:
    lines = ["| n | k | bootstrap | summarize_pair (wall) | peak MiB | naive bootstrap | speed-up | "
             "model calls hgb / logreg | overhead hgb / logreg (wall) | overhead hgb / logreg (CPU) | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        naive = f"{r['naive_s']:.1f} s" + (f" (from {r['naive_resamples_timed']} resamples, extrapolated)"
                                            if r["naive_extrapolated"] else "")
        c, o, oc = r["model_call_s"], r["overhead_vs_model_call"], r["overhead_vs_model_call_cpu"]
        lines.append(f"| {r['n']:,} | {r['k']} | {r['bootstrap']} | {r['summarize_pair_s'] * 1e3:.0f} ms | "
                     f"{r['summarize_pair_peak_mib']:.0f} | {naive} | {r['speedup_vs_naive']:.0f}x | "
                     f"{c['hgb']:.2f} s / {c['logreg'] * 1e3:.0f} ms | {o['hgb']:.1%} / {o['logreg']:.0%} | "
                     f"{oc['hgb']:.1%} / {oc['logreg']:.0%} | {r['load_average_1min']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--ks", type=int, nargs="+", default=[2, 3])
    args = ap.parse_args()
    rows = run(tuple(args.sizes), tuple(args.ks))
    table = markdown(rows)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "platform": platform.platform()},
        "notes": f"naive bootstrap at n > 100,000 timed over {NAIVE_RESAMPLES_1M} resamples and extrapolated "
                 f"linearly to {N_RESAMPLES}; peak memory by tracemalloc (numpy allocations), inputs excluded "
                 "only in the sense that they were allocated before tracing started",
        "rows": rows, "table_markdown": table}, indent=2))


if __name__ == "__main__":
    main()
