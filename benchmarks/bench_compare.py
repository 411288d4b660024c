"""compare() on 1,000,000 tabular rows with a scikit-learn pair: overhead and peak memory.

Measured in one run, side by side:

- the model calls alone: ``parent.predict_proba`` and ``candidate.predict_proba`` over the data
  in the same chunks compare() uses (the irreducible cost);
- compare() end to end (scoring, label matching, every metric, the paired bootstrap of every
  interval, efficiency);
- peak resident memory of a fresh process running compare() (``ru_maxrss``), against the size of
  the input frame itself.

The overhead ratio is (compare - model calls) / model calls. Targets: < 5 % overhead, < 2 GiB peak.

    python benchmarks/bench_compare.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def make_data(n: int, d: int = 8, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float64)
    logits = X[:, 0] + 0.5 * X[:, 1] - 0.25 * X[:, 2] + rng.normal(scale=0.8, size=n)
    y = (logits > 0).astype(np.int64)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(d)]), y


PAIRS = ("linear", "boosted")
REPEATS = 3


def models(frame: pd.DataFrame, y: np.ndarray, pair: str = "linear"):
    """Two scikit-learn pairs: cheap ones (the hardest case for the overhead ratio) and boosted trees."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    fit, yfit = frame.iloc[:50_000], y[:50_000]
    if pair == "linear":
        return (LogisticRegression(max_iter=500).fit(fit, yfit),
                DecisionTreeClassifier(max_depth=6, random_state=0).fit(fit, yfit))
    return (HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=0).fit(fit, yfit),
            HistGradientBoostingClassifier(max_iter=50, early_stopping=False, random_state=0).fit(fit, yfit))


def run_child(n: int, pair: str) -> dict:
    """Runs in a fresh process: times compare() and the bare model calls, reports ru_maxrss."""
    from mlflow_trusteq.compare import compare

    frame, y = make_data(n)
    parent, candidate = models(frame, y, pair)
    data = frame.assign(label=y)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    chunk = 65536

    def model_calls() -> float:  # the model calls alone, same chunks
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            part = frame.iloc[start:start + chunk]
            parent.predict_proba(part)
            candidate.predict_proba(part)
        return time.perf_counter() - t0

    def full() -> tuple[float, object]:
        t0 = time.perf_counter()
        rep = compare(parent, candidate, data, targets="label", chunk_size=chunk)
        return time.perf_counter() - t0, rep

    # interleaved repeats, best of each: threads and caches warm up for both alike
    times_models, times_compare = [], []
    for _ in range(REPEATS):
        times_models.append(model_calls())
        t, report = full()
        times_compare.append(t)
    t_models, t_compare = min(times_models), min(times_compare)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "pair": pair,
        "rows": n,
        "repeats": REPEATS,
        "model_calls_s": t_models,
        "compare_s": t_compare,
        "overhead_ratio": (t_compare - t_models) / t_models,
        "peak_rss_gib": rss_peak / 2**20,
        "rss_before_compare_gib": rss_before / 2**20,
        "input_frame_gib": data.memory_usage(deep=True).sum() / 2**30,
        "bootstrap": report.settings["metrics"].get("bootstrap"),
        "n_resamples": report.settings["n_resamples"],
        "label_loyalty": report.value("label_loyalty"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=PAIRS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.stdout.write(json.dumps(run_child(args.rows, args.child)) + "\n")
        return
    results = []
    for pair in PAIRS:  # each in a fresh process, so that ru_maxrss is this pair's own peak
        out = subprocess.run([sys.executable, __file__, "--child", pair, "--rows", str(args.rows)],
                             capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(results, indent=2))
    table = [
        "| sklearn pair | rows | model calls alone | compare() | overhead | peak RSS (whole process) |",
        "|---|---|---|---|---|---|",
        *[f"| {r['pair']} | {r['rows']:,} | {r['model_calls_s']:.2f} s | {r['compare_s']:.2f} s | "
          f"{100 * r['overhead_ratio']:.1f} % | {r['peak_rss_gib']:.2f} GiB |" for r in results],
        "",
        "linear: logistic regression vs a depth-6 tree; boosted: HistGradientBoosting 200 vs 50 iterations.",
        f"bootstrap: {results[0]['bootstrap']}, {results[0]['n_resamples']} resamples, every metric and difference; "
        f"best of {REPEATS} interleaved repeats each.",
    ]
    (RESULTS / "compare.md").write_text("\n".join(table) + "\n")
    sys.stdout.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
