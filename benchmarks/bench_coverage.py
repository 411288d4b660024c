"""Coverage of the intervals of ``summarize_pair``, by simulation on a process whose truth is known.

The data-generating process (binary, one latent score per example):

- the **parent** is perfectly calibrated: ``z ~ N(0, 2^2)``, ``p = sigmoid(z)``, ``y ~ Bernoulli(p)``,
  and the parent reports ``(1 - p, p)``;
- the **candidate** reports ``sigmoid(a z + s e B)``, ``e ~ N(0, 1)`` independent of ``y``, and
  ``B ~ Bernoulli(f)`` says whether the candidate differs from the parent on the example at all:

  ========== ===== ===== ===== ==================================================================
  scenario    a     s     f    what it is
  ========== ===== ===== ===== ==================================================================
  noisy       1.0   0.35  1     true label loyalty about 0.95 (the default threshold)
  near_copy   1.0   0.10  1     true label loyalty about 0.985 (a close compression)
  overconf    1.6   0.35  1     over-confident candidate: a real calibration gap
  sparse      1.0   2.00  0.02  identical to the parent except on 2 % of the examples (few
                                informative examples: about 4 at ``n = 200``)
  ========== ===== ===== ===== ==================================================================

The **true values** come from a very large sample (``N_TRUTH = 2,000,000``) with every
Bernoulli outcome replaced by its conditional probability given the scores (e.g. the
correctness of the candidate is ``p`` where it predicts 1, ``1 - p`` otherwise), so that they
are exact up to ``~1e-4`` (far below any interval's width). Each cell draws ``R`` samples of
``n`` examples, runs ``summarize_pair`` with its defaults but 500 paired resamples (95 %; the
default 1,000 only makes the bootstrap's own noise smaller) and counts how often the interval
contains the truth; each scenario and ``n`` has its own seed; the Monte Carlo standard error of a coverage
``c`` is ``sqrt(c (1 - c) / R)``.

Run: ``python benchmarks/bench_coverage.py`` (about 40 minutes on one core, ``--jobs 2`` to use
two; ``--reps``, ``--n``, ``--scenarios`` and ``--n-resamples`` to change the grid). Prints a markdown table and writes
``benchmarks/results/coverage.json`` and ``coverage.md``.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit

from mlflow_trusteq.metrics import summarize_pair
from mlflow_trusteq.metrics.calibration import LOG_LOSS_EPS

#: scenario -> (a, s, f): the candidate is sigmoid(a z + s e B), B ~ Bernoulli(f)
SCENARIOS = {"noisy": (1.0, 0.35, 1.0), "near_copy": (1.0, 0.10, 1.0), "overconf": (1.6, 0.35, 1.0),
             "sparse": (1.0, 2.0, 0.02)}
#: what the default policy gates on (DEFAULT_POLICY), then the binned ECE for comparison
METRICS = ("label_loyalty", "probability_loyalty", "negative_flip_rate", "diff/accuracy", "diff/brier_loss",
           "parent/ece_sq_debiased", "diff/ece_sq_debiased", "parent/ece_equal_width", "diff/ece_equal_width",
           "diff/log_loss")
NOT_GATED = ("parent/ece_equal_width", "diff/ece_equal_width", "diff/log_loss")
N_TRUTH = 2_000_000
N_BINS = 15


def draw(scenario: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(P, Q, y, p)`` for ``n`` examples of ``scenario`` (``p``: the parent's P(y = 1))."""
    a, s, f = SCENARIOS[scenario]
    z = rng.normal(0.0, 2.0, n)
    p = expit(z)
    noise = s * rng.normal(size=n)
    if f < 1.0:
        noise *= rng.random(n) < f
    q = expit(a * z + noise)
    y = (rng.random(n) < p).astype(np.int64)
    return np.column_stack([1 - p, p]), np.column_stack([1 - q, q]), y, p


def _binned_gap(conf: np.ndarray, p_correct: np.ndarray) -> tuple[float, float]:
    """Population ``sum_b pi_b mu_b^2`` and ``sum_b pi_b |mu_b|`` of ``mu_b = E[correct - conf | bin b]``."""
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, N_BINS - 1)
    cnt = np.bincount(idx, minlength=N_BINS)
    gap = np.bincount(idx, weights=p_correct - conf, minlength=N_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(cnt > 0, gap / np.maximum(cnt, 1), 0.0)
    pi = cnt / cnt.sum()
    return float((pi * mu ** 2).sum()), float((pi * np.abs(mu)).sum())


@functools.cache
def truth(scenario: str, seed: int = 12345) -> dict[str, float]:
    """The true value of every metric of :data:`METRICS` (large sample, outcomes by their probabilities)."""
    P, Q, _, p = draw(scenario, N_TRUTH, np.random.default_rng(seed))
    pp, pq = P.argmax(1), Q.argmax(1)
    p_cor_p = np.where(pp == 1, p, 1 - p)  # P(parent right | scores) = its confidence: calibrated
    p_cor_q = np.where(pq == 1, p, 1 - p)
    M = 0.5 * (P + Q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = lambda A: np.where(A > 0, A * np.log2(A / M), 0.0).sum(1)  # noqa: E731
    js = np.clip(0.5 * kl(P) + 0.5 * kl(Q), 0, 1)

    def brier(V: np.ndarray) -> np.ndarray:  # E over y of sum_j (V_j - [y = j])^2
        return (V ** 2).sum(1) - 2 * ((1 - p) * V[:, 0] + p * V[:, 1]) + 1

    def nll(V: np.ndarray) -> np.ndarray:  # E over y of -ln max(V_y, 1e-15), as summarize_pair clips
        logs = -np.log(np.clip(V, LOG_LOSS_EPS, 1.0))
        return (1 - p) * logs[:, 0] + p * logs[:, 1]

    sq_p, l1_p = _binned_gap(P.max(1), p_cor_p)
    sq_q, l1_q = _binned_gap(Q.max(1), p_cor_q)
    return {
        "label_loyalty": float(np.mean(pp == pq)),
        "probability_loyalty": float(np.mean(1 - np.sqrt(js))),
        "negative_flip_rate": float(np.mean((pp != pq) * p_cor_p)),
        "diff/accuracy": float(np.mean(p_cor_q - p_cor_p)),
        "diff/brier_loss": float(np.mean(brier(Q) - brier(P))),
        "parent/ece_sq_debiased": sq_p,
        "diff/ece_sq_debiased": sq_q - sq_p,
        "parent/ece_equal_width": l1_p,
        "diff/ece_equal_width": l1_q - l1_p,
        "diff/log_loss": float(np.mean(nll(Q) - nll(P))),
    }


def coverage(scenario: str, n: int, reps: int, *, n_resamples: int = 1000, seed: int = 0,
             true: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Per metric: coverage, its Monte Carlo error, the mean width, and the share of misses on each side."""
    true = true or truth(scenario)
    rng = np.random.default_rng(seed)
    hits = {m: np.zeros(reps, dtype=bool) for m in METRICS}
    below = {m: np.zeros(reps, dtype=bool) for m in METRICS}  # interval entirely below the truth
    width = {m: np.zeros(reps) for m in METRICS}
    for r in range(reps):
        P, Q, y, _ = draw(scenario, n, rng)
        est = summarize_pair(P, Q, y, n_resamples=n_resamples, random_state=int(rng.integers(2**31))).estimates
        for m in METRICS:
            e = est[m]
            lo = -np.inf if e.lower is None else e.lower
            hi = np.inf if e.upper is None else e.upper
            hits[m][r] = lo <= true[m] <= hi
            below[m][r] = hi < true[m]
            width[m][r] = hi - lo
    out = {}
    for m in METRICS:
        c = float(hits[m].mean())
        out[m] = {"coverage": c, "mc_se": float(np.sqrt(max(c * (1 - c), 1e-12) / reps)),
                  "miss_below": float(below[m].mean()), "miss_above": float(1 - c - below[m].mean()),
                  "mean_width": float(width[m].mean()), "truth": true[m]}
    return out


def _cell(job: tuple[str, int, int, int, int]) -> tuple[str, int, dict[str, dict[str, float]]]:
    """One (scenario, n) cell; each has its own seed, ``1000 * (scenario's index) + n + 100000 * seed``."""
    scenario, n, reps, n_resamples, base_seed = job
    seed = 1000 * list(SCENARIOS).index(scenario) + n + 100_000 * base_seed
    return scenario, n, coverage(scenario, n, reps, n_resamples=n_resamples, seed=seed, true=truth(scenario))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--n", type=int, nargs="+", default=[50, 200, 1000])
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--n-resamples", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=1, help="processes, one (scenario, n) cell each at a time")
    ap.add_argument("--seed", type=int, default=0, help="another set of replications (0: the table's)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    jobs = [(s, n, args.reps, args.n_resamples, args.seed) for s in args.scenarios for n in args.n]
    results: dict[str, dict] = {s: {} for s in args.scenarios}
    if args.jobs > 1:
        from multiprocessing import Pool

        with Pool(args.jobs) as pool:
            done = pool.map(_cell, jobs, chunksize=1)
    else:
        done = [_cell(job) for job in jobs]
    for scenario, n, cell in done:
        results[scenario][str(n)] = cell
    print(f"done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    scen = args.scenarios
    header = "| metric | " + " | ".join(f"{s} n={n}" for s in scen for n in args.n) + " |"
    lines = [f"Coverage of the 95 % intervals, {args.reps} replications per cell (± Monte Carlo s.e.), "
             f"{args.n_resamples} paired resamples; "
             "truth: " + ", ".join(f"{s}: loyalty {results[s][str(args.n[0])]['label_loyalty']['truth']:.3f}"
                                   for s in scen) + ".", "",
             header, "|" + "---|" * (1 + len(scen) * len(args.n))]
    for m in METRICS:
        cells = [f"{results[s][str(n)][m]['coverage']:.3f} ± {results[s][str(n)][m]['mc_se']:.3f}"
                 for s in scen for n in args.n]
        lines.append(f"| {m}{' (not gated)' if m in NOT_GATED else ''} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"reps": args.reps, "seed": args.seed, "n": args.n, "n_resamples": args.n_resamples, "n_truth": N_TRUTH,
            "scenarios": {s: {"a": a, "s": sd, "f": f} for s, (a, sd, f) in SCENARIOS.items() if s in scen},
            "python": platform.python_version(), "seconds": round(time.perf_counter() - t0, 1)}
    (args.out / "coverage.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    (args.out / "coverage.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
