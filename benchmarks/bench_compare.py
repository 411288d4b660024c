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


def models(frame: pd.DataFrame, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    fit = frame.iloc[:50_000]
    parent = LogisticRegression(max_iter=500).fit(fit, y[:50_000])
    candidate = DecisionTreeClassifier(max_depth=6, random_state=0).fit(fit, y[:50_000])
    return parent, candidate


def run_child(n: int) -> dict:
    """Runs in a fresh process: times compare() and the bare model calls, reports ru_maxrss."""
    from mlflow_trusteq.compare import compare

    frame, y = make_data(n)
    parent, candidate = models(frame, y)
    data = frame.assign(label=y)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    chunk = 65536
    # the model calls alone, same chunks
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        part = frame.iloc[start:start + chunk]
        parent.predict_proba(part)
        candidate.predict_proba(part)
    t_models = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = compare(parent, candidate, data, targets="label", chunk_size=chunk)
    t_compare = time.perf_counter() - t0
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": n,
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
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.rows)))
        return
    out = subprocess.run([sys.executable, __file__, "--child", "--rows", str(args.rows)], capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compare.json").write_text(json.dumps(result, indent=2))
    table = [
        "| rows | model calls alone | compare() | overhead | peak RSS (whole process) | input frame |",
        "|---|---|---|---|---|---|",
        f"| {result['rows']:,} | {result['model_calls_s']:.2f} s | {result['compare_s']:.2f} s | "
        f"{100 * result['overhead_ratio']:.1f} % | {result['peak_rss_gib']:.2f} GiB | "
        f"{result['input_frame_gib']:.2f} GiB |",
        "",
        f"bootstrap: {result['bootstrap']}, {result['n_resamples']} resamples",
    ]
    (RESULTS / "compare.md").write_text("\n".join(table) + "\n")
    sys.stdout.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
