r"""The Spark engine: trust-equivalence over a whole table, the same :class:`~mlflow_trusteq.TrustReport`.

:func:`compare_spark` takes a Spark DataFrame (or a Parquet path, or a table name), a parent and a
candidate, and returns what :func:`~mlflow_trusteq.compare` returns. What runs where:

- **Executors** (``mapInPandas``): both models score each partition, each loaded once per Python
  worker through the same adapters as ``compare()`` (:func:`~mlflow_trusteq.as_proba_model`:
  probabilities, not pyfunc labels). A first pass writes the probabilities (persisted, memory and
  disk); a second reduces each partition to a :class:`PartialSummary`: the sums of the metric
  state of :mod:`mlflow_trusteq.metrics.pair` (loyalty, JS, flips, correctness, Brier, NLL and the
  bins of both schemes), once for the point estimates and once per bootstrap replicate. Its size
  is ``(n_resamples + 1) x columns`` whatever the partition holds: memory does not grow with the table.
- **Driver**: it merges the partial summaries (they add up), computes every metric and interval
  from the merged sums with the same code as ``compare()``, draws the sample the alignment and
  attack stages run on, and assembles the report with ``compare()``'s own assembly step.

Intervals that merge
--------------------
The bootstrap is a **Poisson bootstrap**: replicate ``r`` weighs row ``i`` by
:math:`w_{ri} \sim \mathrm{Poisson}(1)`, drawn from a hash of the row's key and ``r`` (and the
seed), not from a generator that walks the rows in order. A row keeps its weights wherever it
lands, so the intervals do not depend on how the table is partitioned, and they are reproducible
under ``random_state``. The row key is a column (``row_key=``) or, by default, a stable 64-bit hash
of the row's feature values and gold label. ``compare()`` resamples examples (or groups) with a
multinomial draw instead: both are the bootstrap of the same statistics, and their coverage agrees
(tests check it on a simulation), but their bounds are not equal draw for draw.

Bins
----
Equal-width bins are fixed. Equal-mass bins need the order statistics of each model's confidence at
the bin boundaries: one quantile pass (``approxQuantile``) finds them; with
``quantile_relative_error=0`` (the default) they are exact and the bins are those of ``compare()``
(for distinct confidences; examples tied at an edge all go to the upper bin), otherwise each edge
is within ``ceil(relative_error * n)`` ranks of the exact one, and that bound is recorded in
``settings["engine"]``.

Importing this module does not import pyspark; :func:`compare_spark` does, and says how to
install it when it is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._config import TrustEqConfig
from ._errors import InvalidInputError, MissingDependencyError, ModelOutputError
from ._types import Estimate

if TYPE_CHECKING:
    import pandas as pd

    from .compare import TrustReport
    from .metrics import PairSummary

__all__ = ["compare_spark", "PartialSummary", "partial_summary", "summary_from_partials", "poisson_weights",
           "row_hashes", "key_hashes", "exact_mass_edges", "is_spark_dataframe", "DEFAULT_SAMPLE_SIZE",
           "table_behind_cut_dataset", "spark_frame_behind",
           "DIGEST_SCHEME", "INSTALL_HINT"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'mlflow-trusteq[spark]'  (pyspark, and Java 17+ on the machine)"
#: rows of the sample the alignment and attack stages (and ``TrustReport.predictions``) get
DEFAULT_SAMPLE_SIZE = 2000
#: the prefix of a Spark report's ``data_digest``: an order-free digest of the rows (see :func:`compare_spark`)
DIGEST_SCHEME = "spark-rowhash-v1"
#: most cells of a replicate-weight block alive at once in an executor
_MAX_CELLS = 2_000_000
_MASK64 = (1 << 64) - 1
_U64 = np.uint64


# ----------------------------------------------------------------------------- hashing and Poisson weights
def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on a uint64 array (a bijection that scatters every input bit)."""
    x = np.asarray(x, dtype=_U64)
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U64(27))
        x = x * _U64(0x94D049BB133111EB)
        x = x ^ (x >> _U64(31))
    return x


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A stable 64-bit hash of each row's values (``pandas.util.hash_pandas_object``, index ignored)."""
    import pandas as pd

    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=_U64)


def key_hashes(values: pd.Series) -> np.ndarray:
    """The 64-bit key of each row from a key column: integers as themselves (mixed), others hashed."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(values.dtype):
        return _mix64(values.to_numpy().astype(np.int64).view(_U64))
    return pd.util.hash_pandas_object(values, index=False).to_numpy(dtype=_U64)


#: Poisson(1) cumulative probabilities P(W <= j), j = 0..19 (P(W >= 20) < 1e-19)
_POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(j) for j in range(20)])


def poisson_weights(keys: np.ndarray, replicates: np.ndarray, seed: int) -> np.ndarray:
    """``(len(replicates), len(keys))`` Poisson(1) bootstrap weights, a function of (key, replicate, seed).

    Each weight comes from the uniform ``mix64(key ^ mix64(replicate, seed))``; the same row gets
    the same weights in any partition, on any machine.
    """
    keys = np.asarray(keys, dtype=_U64)
    with np.errstate(over="ignore"):
        salt = _mix64(np.asarray(replicates, dtype=_U64) * _U64(0x9E3779B97F4A7C15)
                      + _mix64(np.asarray([seed], dtype=_U64)))
    u = (_mix64(keys[None, :] ^ salt[:, None]) >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return np.searchsorted(_POISSON_CDF, u, side="right").astype(np.float64)


# ----------------------------------------------------------------------------- the state that merges
@dataclass
class PartialSummary:
    """The metric state of some rows: it merges by addition (:meth:`merge`), in any order.

    ``pair_total`` / ``models_total`` are ``(1, c)`` sums over the rows in the column layout of
    :mod:`mlflow_trusteq.metrics.pair`; ``pair_reps`` / ``models_reps`` ``(r, c)`` the same sums
    weighted by each Poisson replicate; ``flips`` the ``(k, k)`` flip counts; ``seconds`` each
    model's scoring time; ``digest`` three order-free accumulators of the rows' content hashes.
    """

    pair_total: np.ndarray
    models_total: dict[str, np.ndarray]
    pair_reps: np.ndarray
    models_reps: dict[str, np.ndarray]
    flips: np.ndarray
    n_rows: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"parent": 0.0, "candidate": 0.0})
    digest: tuple[int, int, int] = (0, 0, 0)

    def merge(self, other: PartialSummary) -> PartialSummary:
        """The state of both sets of rows (disjoint rows, same layout, bins and replicates)."""
        a, b = self.digest, other.digest
        return PartialSummary(
            self.pair_total + other.pair_total,
            {m: s + other.models_total[m] for m, s in self.models_total.items()},
            self.pair_reps + other.pair_reps,
            {m: s + other.models_reps[m] for m, s in self.models_reps.items()},
            self.flips + other.flips, self.n_rows + other.n_rows,
            {m: s + other.seconds[m] for m, s in self.seconds.items()},
            ((a[0] + b[0]) & _MASK64, a[1] ^ b[1], (a[2] + b[2]) & _MASK64))

    def to_bytes(self) -> bytes:
        """The state as bytes (``numpy.savez``), what an executor sends to the driver."""
        arrays: dict[str, Any] = {"pair_total": self.pair_total, "pair_reps": self.pair_reps, "flips": self.flips,
                  "meta": np.frombuffer(json.dumps({"n_rows": self.n_rows, "seconds": self.seconds,
                                                    "digest": [str(d) for d in self.digest],
                                                    "models": sorted(self.models_total)}).encode(), dtype=np.uint8)}
        for m in self.models_total:
            arrays[f"total_{m}"] = self.models_total[m]
            arrays[f"reps_{m}"] = self.models_reps[m]
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PartialSummary:
        with np.load(io.BytesIO(data)) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            return cls(z["pair_total"], {m: z[f"total_{m}"] for m in meta["models"]}, z["pair_reps"],
                       {m: z[f"reps_{m}"] for m in meta["models"]}, z["flips"], int(meta["n_rows"]),
                       {k: float(v) for k, v in meta["seconds"].items()},
                       tuple(int(d) for d in meta["digest"]))  # type: ignore[arg-type]


def _layout(has_targets: bool, cfg: TrustEqConfig) -> Any:
    from .metrics.pair import _Layout

    return _Layout(has_targets, (("equal_width", cfg.n_bins_equal_width), ("equal_mass", cfg.n_bins_equal_mass)))


def partial_summary(P: np.ndarray, Q: np.ndarray, y: np.ndarray | None, keys: np.ndarray, *, cfg: TrustEqConfig,
                    mass_edges: Mapping[str, np.ndarray] | None, content: np.ndarray | None = None,
                    seconds: Mapping[str, float] | None = None, n_groups: int | None = None) -> PartialSummary:
    """Reduce some rows' probabilities to their :class:`PartialSummary` (what each executor does).

    Parameters
    ----------
    P, Q : ndarray of shape (m, k)
        Parent's and candidate's probabilities (the candidate's columns in the parent's order).
    y : ndarray of shape (m,), optional
        Gold labels as class indices.
    keys : ndarray of uint64, shape (m,)
        The rows' keys, which seed their bootstrap weights.
    cfg : TrustEqConfig
        ``js_base``, the bins, ``n_resamples`` and ``random_state``.
    mass_edges : mapping, optional
        The equal-mass edges of each model fixed from the whole table (required with labels).
    n_groups : int, optional
        The grouped scheme: instead of ``n_resamples`` Poisson replicates, the sums of each of
        ``n_groups`` groups, a row's group a hash of its key and the seed (the driver then draws
        the groups with replacement, as ``compare()``'s ``groups(G)`` scheme does).
    content : ndarray of uint64, optional
        The rows' content hashes, accumulated into the order-free digest.
    """
    if y is not None and mass_edges is None:
        raise InvalidInputError("with gold labels, the equal-mass edges must be fixed from the whole table first")
    P = np.asarray(P, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    m, k = P.shape
    layout = _layout(y is not None, cfg)
    r = cfg.n_resamples if n_groups is None else n_groups
    # a block of Poisson weights is (r, rows): at most _MAX_CELLS of them alive at once
    step = max(1, _MAX_CELLS // max(r, 1)) if n_groups is None else max(m, 1)
    state: PartialSummary | None = None
    for start in range(0, m, step):
        sl = slice(start, start + step)
        block = _block_summary(P[sl], Q[sl], None if y is None else y[sl], keys[sl], cfg=cfg, layout=layout,
                               mass_edges=mass_edges, n_groups=n_groups)
        state = block if state is None else state.merge(block)
    if state is None:  # an empty partition
        return _empty_partial(layout, r, k)
    return dataclasses.replace(state, seconds=dict(seconds or {"parent": 0.0, "candidate": 0.0}),
                               digest=_order_free_digest(content))


def _block_summary(P: np.ndarray, Q: np.ndarray, y: np.ndarray | None, keys: np.ndarray, *, cfg: TrustEqConfig,
                   layout: Any, mass_edges: Mapping[str, np.ndarray] | None, n_groups: int | None) -> PartialSummary:
    """The sums of one block of rows: in total, and per Poisson replicate (or per hashed group)."""
    from .metrics.pair import _contributions, _PairSums

    c = _contributions(P, Q, y, cfg.js_base, layout, mass_edges=None if mass_edges is None else dict(mass_edges))
    if n_groups is None:
        state = _PairSums.from_examples(c, layout, None, len(P))
        replicates = np.arange(cfg.n_resamples, dtype=np.uint64)
        t, w = state.total(), state.resample(poisson_weights(keys, replicates, cfg.random_state))
    else:
        g = (_sample_hash(keys, cfg.random_state + 7919) * n_groups).astype(np.intp)
        w = _PairSums.from_examples(c, layout, g, n_groups)
        t = w.total()
    return PartialSummary(t.pair[None, :], {n: s[None, :] for n, s in t.models.items()}, w.pair, dict(w.models),
                          np.asarray(c.flips, dtype=np.int64), len(P))


def _order_free_digest(content: np.ndarray | None) -> tuple[int, int, int]:
    """Three accumulators of the rows' content hashes that do not depend on the rows' order."""
    if content is None or not len(content):
        return (0, 0, 0)
    h = np.asarray(content, dtype=_U64)
    with np.errstate(over="ignore"):
        return (int(h.sum(dtype=_U64)), int(np.bitwise_xor.reduce(h)), int(_mix64(h).sum(dtype=_U64)))


def _empty_partial(layout: Any, r: int, k: int) -> PartialSummary:
    c_pair = len(layout.pair_fields)
    c_model = len(layout.MODEL_FIELDS) + sum(3 * nb for _, nb in layout.bins)
    models = ("parent", "candidate") if layout.has_targets else ()
    return PartialSummary(np.zeros((1, c_pair)), {m: np.zeros((1, c_model)) for m in models},
                          np.zeros((r, c_pair)), {m: np.zeros((r, c_model)) for m in models},
                          np.zeros((k, k), dtype=np.int64))


def exact_mass_edges(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """The equal-mass edges of ``compare()`` on one array of confidences (the exact order statistics)."""
    from .metrics.calibration import _equal_mass_bins

    return _equal_mass_bins(np.asarray(conf, dtype=np.float64), n_bins)[1]


def summary_from_partials(state: PartialSummary, *, cfg: TrustEqConfig, has_targets: bool,
                          mass_edges: Mapping[str, np.ndarray] | None, settings: Mapping[str, Any] | None = None,
                          n_groups: int | None = None) -> PairSummary:
    """The :class:`~mlflow_trusteq.metrics.PairSummary` of the merged state: points and Poisson intervals.

    The metrics are computed from the sums by the same code as ``compare()``'s
    (:meth:`~mlflow_trusteq.metrics.pair._PairSums.compute`); an interval is the percentile interval
    of the Poisson replicates, or (``n_groups``: the state holds group sums) ``compare()``'s own
    grouped bootstrap of them.
    """
    from .metrics import PairSummary
    from .metrics.bootstrap import percentile_interval
    from .metrics.loyalty import _per_class_from_flips
    from .metrics.pair import _check_options, _estimates, _PairSums

    layout = _layout(has_targets, cfg)
    n = state.n_rows
    opts = _check_options(n, base=cfg.js_base, n_bins_equal_width=cfg.n_bins_equal_width,
                          n_bins_equal_mass=cfg.n_bins_equal_mass, min_bin_count=cfg.min_bin_count,
                          n_resamples=cfg.n_resamples, confidence=cfg.confidence, random_state=cfg.random_state,
                          bootstrap="examples" if n_groups is None else "groups", n_groups=n_groups or 2000)
    totals = _PairSums(state.pair_total, state.models_total)
    estimates: dict[str, Estimate] = {}
    if n_groups is not None:  # compare()'s grouped bootstrap, on hash-assigned groups
        groups = _PairSums(state.pair_reps, state.models_reps)
        estimates = _estimates(groups, layout, opts, np.random.default_rng(opts.random_state), False)
    else:
        point = totals.total().compute(layout, opts.min_bin_count)
        reps = _PairSums(state.pair_reps, state.models_reps).compute(layout, opts.min_bin_count)
        for key, value in point.items():
            lo = hi = None
            if opts.n_resamples > 0 and n >= 2:
                with np.errstate(invalid="ignore"):
                    lo, hi = percentile_interval(np.asarray(reps[key]), confidence=opts.confidence)
            estimates[key] = Estimate(float(value), lo, hi, opts.confidence)
    reliability = {}
    if has_targets:
        assert mass_edges is not None
        width = np.linspace(0.0, 1.0, cfg.n_bins_equal_width + 1)
        binned = {m: {"equal_width": SimpleNamespace(edges=width),
                      "equal_mass": SimpleNamespace(edges=np.asarray(mass_edges[m]))} for m in state.models_total}
        reliability = totals.reliability(layout, binned)  # type: ignore[arg-type]
    scheme = ("poisson (weights from a hash of the row key, the replicate index and the seed)" if n_groups is None
              else f"groups({n_groups}), a row's group a hash of its key and the seed")
    recorded = opts.settings() | {
        "bootstrap": scheme,
        "interval": "percentile, paired (same resample weights for both models and all metrics)",
        "equal_mass_bins": ("edges: the order statistics of each model's confidence at the rank-based boundaries "
                            "of the whole table (a quantile pass); a row goes to the last bin whose lower edge it "
                            "reaches (ties at an edge: the upper bin)"),
    } | dict(settings or {})
    flips = np.asarray(state.flips)
    return PairSummary(estimates=estimates, per_class_loyalty=[float(v) for v in _per_class_from_flips(flips)],
                       flip_matrix=flips.tolist(), reliability=reliability, settings=recorded,
                       has_targets=has_targets, n_examples=n, n_classes=int(flips.shape[0]))


# ----------------------------------------------------------------------------- Spark plumbing
def _require_pyspark() -> Any:
    try:
        import pyspark
        from pyspark.sql import SparkSession  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"the Spark engine needs pyspark, which is not installed: {INSTALL_HINT}"
                                     ) from None
    return pyspark


def is_spark_dataframe(obj: Any) -> bool:
    """True for a pyspark DataFrame (classic or Spark Connect); never imports pyspark."""
    if "pyspark" not in sys.modules:
        return False
    return any(c.__module__.startswith("pyspark.sql") and c.__name__ == "DataFrame" for c in type(obj).__mro__)


def _session(spark: Any) -> Any:
    if spark is not None:
        return spark
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    logger.info("no active SparkSession: starting a local one (pass `spark=` to use yours)")
    return SparkSession.builder.appName("trusteq").getOrCreate()


def _as_spark_frame(data: Any, spark: Any) -> Any:
    """A Spark DataFrame from a DataFrame, a Parquet/CSV path or a table name (or a clear error)."""
    if is_spark_dataframe(data):
        return data
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        session = _session(spark)
        if os.path.exists(text) or "://" in text:
            lower = text.lower().rstrip("/")
            try:
                if lower.endswith(".csv"):
                    return session.read.csv(text, header=True, inferSchema=True)
                if lower.endswith((".tsv", ".tab")):
                    return session.read.csv(text, header=True, inferSchema=True, sep="\t")
                return session.read.parquet(text)
            except Exception as exc:
                raise InvalidInputError(f"{text!r} could not be read as a Parquet (or .csv/.tsv) table: "
                                        f"{type(exc).__name__}: {str(exc)[:300]}") from None
        if session.catalog.tableExists(text):
            return session.table(text)
        raise InvalidInputError(f"{text!r} is neither an existing path nor a table in the Spark catalog")
    raise InvalidInputError(f"the Spark engine takes a Spark DataFrame, a Parquet/CSV path or a table name, got "
                            f"{type(data).__name__} (for a pandas DataFrame use mlflow_trusteq.compare)")


#: per Python worker: (token) -> loaded adapter, so that each model is loaded once per worker
_WORKER_MODELS: dict[str, Any] = {}


def _model_spec(model: Any, kwargs: Mapping[str, Any], role: str) -> tuple[str, Any]:
    """(token, what ships to the executors): a URI or path as itself, an object pickled with the task."""
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        try:
            kw = json.dumps(dict(kwargs), sort_keys=True, default=repr)
        except TypeError:
            kw = uuid.uuid4().hex
        return f"{role}:{text}:{hashlib.sha256(kw.encode()).hexdigest()[:16]}", text
    # a loaded pyfunc model ships by its URI when MLflow knows it (a pickled pyfunc may not load elsewhere)
    uri = getattr(getattr(model, "metadata", None), "model_uri", None)
    if uri and not kwargs:
        return _model_spec(uri, kwargs, role)
    return f"{role}:{uuid.uuid4().hex}", model


def _mlflow_uris() -> tuple[str | None, str | None]:
    """The driver's tracking and registry URIs (set in-process, so the executors must be told)."""
    try:
        import mlflow

        return mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    except Exception:  # pragma: no cover - mlflow is a dependency
        return None, None


def _worker_model(token: str, spec: Any, kwargs: Mapping[str, Any],
                  uris: tuple[str | None, str | None] = (None, None)) -> Any:
    model = _WORKER_MODELS.get(token)
    if model is None:
        from .adapters import as_proba_model

        if isinstance(spec, str) and spec.startswith(("models:/", "runs:/")) and uris[0]:
            import mlflow

            mlflow.set_tracking_uri(uris[0])
            if uris[1]:
                mlflow.set_registry_uri(uris[1])

        model = as_proba_model(spec, **dict(kwargs))
        while len(_WORKER_MODELS) >= 8:
            _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
        _WORKER_MODELS[token] = model
    return model


@dataclass(frozen=True)
class _Job:
    """What the executors need (pickled with each task): columns, models, label rules, options."""

    features: tuple[str, ...]
    target: str | None
    row_key: str | None
    parent: tuple[str, Any]
    candidate: tuple[str, Any]
    parent_kwargs: dict[str, Any]
    candidate_kwargs: dict[str, Any]
    perm: tuple[int, ...]
    k: int
    target_map: dict[Any, int] | None
    cfg: TrustEqConfig
    sample_threshold: float
    sample_fields: tuple[Any, ...]  # the StructFields of the features (and the label), carried for sampled rows
    n_groups: int | None = None  # the grouped scheme's G; None: Poisson replicates
    mlflow_uris: tuple[str | None, str | None] = (None, None)  # where models:/ and runs:/ URIs resolve
    input_fields: tuple[Any, ...] = ()  # the StructFields of the features, label and row key (the parent cache)
    sample_size: int = DEFAULT_SAMPLE_SIZE  # rows of the sections' sample
    slice_columns: tuple[str, ...] = ()  # the other columns the slice specs read (carried into the sample)

    @property
    def sample_columns(self) -> list[str]:
        extra = [c for c in (self.target, *self.slice_columns) if c and c not in self.features]
        return list(self.features) + list(dict.fromkeys(extra))

    def score_columns(self) -> list[str]:
        return ([f"p{j}" for j in range(self.k)] + [f"q{j}" for j in range(self.k)]
                + ["__y", "__key", "__content", "__pconf", "__qconf", "__tp", "__tq", "__u"]
                + [f"__s_{c}" for c in self.sample_columns])

    def schema(self) -> Any:
        from pyspark.sql.types import DoubleType, LongType, StructField, StructType

        fields = [StructField(f"p{j}", DoubleType()) for j in range(self.k)]
        fields += [StructField(f"q{j}", DoubleType()) for j in range(self.k)]
        fields += [StructField(c, LongType()) for c in ("__y", "__key", "__content")]
        fields += [StructField(c, DoubleType()) for c in ("__pconf", "__qconf", "__tp", "__tq", "__u")]
        fields += [StructField(f"__s_{f.name}", f.dataType, True) for f in self.sample_fields]
        return StructType(fields)

    def parent_schema(self) -> Any:
        """The parent-cache frame: the input columns, the parent's probabilities and its seconds."""
        from pyspark.sql.types import DoubleType, StructField, StructType

        return StructType([*self.input_fields, *(StructField(f"p{j}", DoubleType()) for j in range(self.k)),
                           StructField("__tp", DoubleType())])


def _sample_hash(keys: np.ndarray, seed: int) -> np.ndarray:
    """A uniform in [0, 1) per row from its key and the seed: the sample is the rows with the lowest."""
    return (_mix64(keys ^ _mix64(np.asarray([seed + 1], dtype=_U64))) >> _U64(11)).astype(np.float64) / (1 << 53)


def _content_hashes(job: _Job, pdf: pd.DataFrame) -> np.ndarray:
    cols = list(job.features) + ([job.target] if job.target else [])
    return row_hashes(pdf[cols])


def _timed_proba(model: Any, records: pd.DataFrame, name: str) -> tuple[np.ndarray, float]:
    """One model's probabilities of a batch (checked to be one row per record) and the seconds they took."""
    t0 = time.perf_counter()
    proba = np.asarray(model.predict_proba(records), dtype=np.float64)
    seconds = time.perf_counter() - t0
    if proba.ndim != 2 or proba.shape[0] != len(records):
        raise ModelOutputError(f"the {name} returned probabilities of shape {proba.shape} for a batch of "
                               f"{len(records)} rows")
    return proba, seconds


def _first_row_seconds(m: int, seconds: float) -> np.ndarray:
    """A batch's scoring seconds as a column: all on its first row (the column then sums to the total)."""
    out = np.zeros(m)
    out[0] = seconds
    return out


def _score_partition(job: _Job, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Executor, pass 1: both models' probabilities of each batch, the row keys, confidences and seconds."""
    parent = _worker_model(job.parent[0], job.parent[1], job.parent_kwargs, job.mlflow_uris)
    candidate = _worker_model(job.candidate[0], job.candidate[1], job.candidate_kwargs, job.mlflow_uris)
    for pdf in batches:
        if len(pdf) == 0:
            continue
        records = pdf[list(job.features)].reset_index(drop=True)
        P, t_parent = _timed_proba(parent, records, "parent")
        Q, t_candidate = _timed_proba(candidate, records, "candidate")
        yield _scored_batch(job, pdf, P, Q, _first_row_seconds(len(pdf), t_parent),
                            _first_row_seconds(len(pdf), t_candidate))


def _parent_partition(job: _Job, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Executor, the parent-cache pass: the input rows with the parent's probabilities and seconds."""
    parent = _worker_model(job.parent[0], job.parent[1], job.parent_kwargs, job.mlflow_uris)
    names = [f.name for f in job.input_fields]
    for pdf in batches:
        if len(pdf) == 0:
            continue
        P, t_parent = _timed_proba(parent, pdf[list(job.features)].reset_index(drop=True), "parent")
        if P.shape[1] != job.k:
            raise ModelOutputError(f"the parent returned {P.shape[1]} probability columns for {job.k} labels")
        out = pdf[names].reset_index(drop=True)
        for j in range(job.k):
            out[f"p{j}"] = P[:, j]
        out["__tp"] = _first_row_seconds(len(pdf), t_parent)
        yield out


def _candidate_partition(job: _Job, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Executor, pass 1 on the parent-cache frame: only the candidate scores; the parent's columns are read."""
    candidate = _worker_model(job.candidate[0], job.candidate[1], job.candidate_kwargs, job.mlflow_uris)
    for pdf in batches:
        if len(pdf) == 0:
            continue
        pdf = pdf.reset_index(drop=True)
        P = pdf[[f"p{j}" for j in range(job.k)]].to_numpy(dtype=np.float64)
        Q, t_candidate = _timed_proba(candidate, pdf[list(job.features)], "candidate")
        yield _scored_batch(job, pdf, P, Q, pdf["__tp"].to_numpy(dtype=np.float64),
                            _first_row_seconds(len(pdf), t_candidate))


def _scored_batch(job: _Job, pdf: pd.DataFrame, P: np.ndarray, Q: np.ndarray, tp: np.ndarray,
                  tq: np.ndarray) -> pd.DataFrame:
    """A scored batch in :meth:`_Job.schema`'s columns (``Q`` in the candidate's own column order)."""
    import pandas as pd

    Q = Q[:, np.asarray(job.perm)]
    if P.shape[1] != job.k or Q.shape[1] != job.k:
        raise ModelOutputError(f"the models returned {P.shape[1]} and {Q.shape[1]} probability columns for "
                               f"{job.k} labels")
    content = _content_hashes(job, pdf)
    keys = key_hashes(pdf[job.row_key]) if job.row_key else content
    out = {f"p{j}": P[:, j] for j in range(job.k)} | {f"q{j}": Q[:, j] for j in range(job.k)}
    if job.target_map is not None:
        out["__y"] = pdf[job.target].map(job.target_map).to_numpy(dtype=np.int64)
    else:
        out["__y"] = np.full(len(pdf), -1, dtype=np.int64)
    out["__key"] = keys.view(np.int64)
    out["__content"] = content.view(np.int64)
    rows = np.arange(len(pdf))
    out["__pconf"] = P[rows, P.argmax(axis=1)]
    out["__qconf"] = Q[rows, Q.argmax(axis=1)]
    out["__tp"], out["__tq"] = tp, tq
    u = _sample_hash(keys, job.cfg.random_state)
    out["__u"] = u
    keep = u < job.sample_threshold
    frame = pd.DataFrame(out)
    for c in job.sample_columns:  # the sample's rows carry their features, the others nulls
        frame[f"__s_{c}"] = pdf[c].reset_index(drop=True).where(keep, None)
    return frame[job.score_columns()]


def _sum_partition(job: _Job, mass_edges: dict[str, np.ndarray] | None,
                   batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Executor, pass 2: the partition's scored rows -> one :class:`PartialSummary` (as bytes)."""
    import pandas as pd

    state: PartialSummary | None = None
    for pdf in batches:
        if len(pdf) == 0:
            continue
        P = pdf[[f"p{j}" for j in range(job.k)]].to_numpy(dtype=np.float64)
        Q = pdf[[f"q{j}" for j in range(job.k)]].to_numpy(dtype=np.float64)
        y = pdf["__y"].to_numpy(dtype=np.int64) if job.target_map is not None else None
        part = partial_summary(P, Q, y, pdf["__key"].to_numpy(dtype=np.int64).view(_U64), cfg=job.cfg,
                               mass_edges=mass_edges, content=pdf["__content"].to_numpy(np.int64).view(_U64),
                               seconds={"parent": float(pdf["__tp"].sum()), "candidate": float(pdf["__tq"].sum())},
                               n_groups=job.n_groups)
        state = part if state is None else state.merge(part)
    if state is not None:
        yield pd.DataFrame({"state": [state.to_bytes()]})


def _mass_ranks(n: int, n_bins: int) -> np.ndarray:
    from .metrics.calibration import _mass_sizes

    return np.cumsum(_mass_sizes(n, n_bins))[:-1]


# ----------------------------------------------------------------------------- the engine
def compare_spark(
    parent: Any,
    candidate: Any,
    data: Any,
    *,
    targets: str | None = None,
    config: TrustEqConfig | Mapping[str, Any] | None = None,
    row_key: str | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    quantile_relative_error: float = 0.0,
    bootstrap: str = "auto",
    n_groups: int = 2000,
    spark: Any = None,
    before_measuring: Callable[[], None] | None = None,
    **overrides: Any,
) -> TrustReport:
    """:func:`~mlflow_trusteq.compare` on a Spark table: the same :class:`~mlflow_trusteq.TrustReport`.

    Parameters
    ----------
    parent, candidate
        A ``models:/`` or ``runs:/`` URI, a local MLflow model folder, or any picklable model
        :func:`~mlflow_trusteq.as_proba_model` accepts (a scikit-learn estimator): it is loaded once
        per executor worker.
    data
        A Spark DataFrame, a Parquet (or ``.csv``/``.tsv``) path, or a table name.
    targets : str, optional
        The gold-label column.
    config : TrustEqConfig or mapping, optional
        As for ``compare()``; ``row_key`` there is used when ``row_key=`` is not given.
    row_key : str, optional
        A column whose values seed each row's bootstrap weights and sample draw (an id). Default: a
        stable 64-bit hash of the row's features and gold label (identical rows then share weights).
    sample_size : int, default 2000
        Rows drawn (by the seeded hash of the row key: partition-free) for the alignment and attack
        stages and for ``TrustReport.predictions``.
    quantile_relative_error : float, default 0.0
        ``approxQuantile``'s relative error for the equal-mass edges; 0 is exact (one more costly
        pass), larger is cheaper and recorded with its rank bound.
    bootstrap : {"auto", "poisson", "groups"}, default "auto"
        ``"poisson"``: every row weighed by its own Poisson(1) draw per replicate (cost
        ``O(n_resamples)`` per row); ``"groups"``: rows hashed into ``n_groups`` groups whose sums
        ``compare()``'s grouped bootstrap resamples (cost ``O(1)`` per row). ``"auto"``, like
        ``compare()``: Poisson up to 20,000 rows, groups above.
    n_groups : int, default 2000
        ``G`` of the grouped scheme.
    spark : SparkSession, optional
        Default: the active session (or a new local one, for a path or a table name).
    before_measuring : callable, optional
        As for ``compare()``: called once the data, models and labels are validated.
    **overrides
        Fields of :class:`~mlflow_trusteq.TrustEqConfig`.

    Returns
    -------
    TrustReport
        ``n_examples`` is the table's row count; ``settings["engine"]`` records the engine, the
        partitions, the sample (size and seed), the row key and the quantile bound;
        ``data_digest`` is ``spark-rowhash-v1:<hex>``, an order-free digest of the rows' content
        hashes (partitioning does not change it), not the row-ordered ``sha256-rows-v1``.
        Throughputs are per executor core (rows over the summed scoring seconds).

    Raises
    ------
    MissingDependencyError
        pyspark is not installed (the message gives the install command).
    InvalidInputError
        A missing column, a path that is not a table, missing feature values, bad gold labels.
    """
    _require_pyspark()
    from .compare import _load_models, _with_call_memo

    cfg = TrustEqConfig.from_mapping(config, **overrides)
    row_key = row_key if row_key is not None else cfg.row_key
    _check_arguments(targets, sample_size, quantile_relative_error, bootstrap)
    sdf = _as_spark_frame(data, spark)
    features = _feature_columns(sdf, cfg, targets, row_key)
    slice_cols = _slice_columns(sdf, cfg, features)
    models = _with_call_memo(_load_models(parent, candidate, cfg), parent, cfg)
    table = _check_table(sdf, features, targets, row_key, models.labels)
    if before_measuring is not None:
        before_measuring()
    job = _make_job(parent, candidate, cfg, models, sdf, features, targets, row_key, table,
                    sample_size=sample_size, n_groups=n_groups if _use_groups(bootstrap, table.n, n_groups) else None,
                    slice_cols=slice_cols)
    key = _parent_cache_key(parent, cfg, job, table, sdf)
    scored, parent_cached = _scored_frame(sdf, job, key)
    passes = _run_passes(scored, job, table.n, quantile_relative_error)
    passes.timings["checks"] = table.seconds
    logger.info("spark engine timings (s): %s", {k: round(v, 2) for k, v in passes.timings.items()})
    logger.info("spark engine: %d rows in %d partition(s) scored and summed in %.1f s", table.n, passes.n_parts,
                passes.wall)
    return _assemble(models, cfg, job, table, passes, parent_cached=parent_cached,
                     n_partitions=sdf.rdd.getNumPartitions() if hasattr(sdf, "rdd") else None,
                     sample_size=sample_size, quantile_relative_error=quantile_relative_error)


# ----------------------------------------------------------------------------- the engine's steps
@dataclass(frozen=True)
class _Table:
    """What the check pass found: the row count, the gold labels' codes, a content digest, its seconds."""

    n: int
    target_map: dict[Any, int] | None
    content: str  # an order-free digest of the rows from Spark's own hashes (the parent cache's data key)
    seconds: float


@dataclass
class _Passes:
    """What the passes over the scored table gave the driver."""

    state: PartialSummary
    mass_edges: dict[str, np.ndarray] | None
    rank_bound: int
    sample: pd.DataFrame
    n_parts: int
    wall: float
    timings: dict[str, float]


def _check_arguments(targets: Any, sample_size: Any, quantile_relative_error: float, bootstrap: str) -> None:
    if targets is not None and not isinstance(targets, str):
        raise InvalidInputError("on Spark, `targets` is the name of the gold-label column, got "
                                f"{type(targets).__name__}")
    if not (isinstance(sample_size, int) and sample_size >= 1):
        raise InvalidInputError(f"`sample_size` must be a positive integer, got {sample_size!r}")
    if not 0.0 <= quantile_relative_error < 1.0:
        raise InvalidInputError(f"`quantile_relative_error` must be in [0, 1), got {quantile_relative_error!r}")
    if bootstrap not in ("auto", "poisson", "groups"):
        raise InvalidInputError(f"`bootstrap` must be 'auto', 'poisson' or 'groups', got {bootstrap!r}")


def _use_groups(bootstrap: str, n: int, n_groups: int) -> bool:
    """The grouped scheme: asked for, or (``"auto"``, like ``compare()``) above its example-bootstrap limit."""
    from .metrics.pair import EXAMPLE_BOOTSTRAP_MAX_N

    return (bootstrap == "groups" or (bootstrap == "auto" and n > EXAMPLE_BOOTSTRAP_MAX_N)) and n > n_groups


def _feature_columns(sdf: Any, cfg: TrustEqConfig, targets: str | None, row_key: str | None) -> list[str]:
    """The feature columns (the configured ones, or every column but the label and the key), checked."""
    columns = list(sdf.columns)
    for name, col in (("targets", targets), ("row_key", row_key)):
        if col is not None and col not in columns:
            raise InvalidInputError(f"{name} column {col!r} is not in the table; columns: {columns}")
    features = list(cfg.feature_columns) if cfg.feature_columns else [c for c in columns
                                                                     if c not in (targets, row_key)]
    missing = [c for c in features if c not in columns]
    if missing:
        raise InvalidInputError(f"feature column(s) {missing} not in the table; columns: {columns}")
    if not features:
        raise InvalidInputError("no feature columns left once the targets and row key columns are removed")
    return features


def _input_columns(features: list[str], targets: str | None, row_key: str | None,
                   extra: tuple[str, ...] = ()) -> list[str]:
    return list(dict.fromkeys([*features, *(c for c in (targets, row_key) if c), *extra]))


#: rows of the table the slice specs are checked on before anything is scored
_SLICE_CHECK_ROWS = 1000


def _slice_columns(sdf: Any, cfg: TrustEqConfig, features: list[str]) -> tuple[str, ...]:
    """The table columns the slice specs read, the specs checked on the table's first rows before anything is
    scored (a missing column, ``input_length`` on tabular rows, bins on a non-numeric column...)."""
    from .compare import infer_kind
    from .slices import BUILTIN_SLICES, check_slices, slice_columns

    if not cfg.slices:
        return ()
    cols = slice_columns(cfg.slices)
    missing = [c for c in cols if c not in sdf.columns]
    if missing:
        raise InvalidInputError(f"slice column(s) {missing} not in the table; columns: {list(sdf.columns)} "
                                f"(built-in slices: {list(BUILTIN_SLICES)}, 'builtin')")
    head = sdf.select(*dict.fromkeys([*features, *cols])).limit(_SLICE_CHECK_ROWS).toPandas()
    check_slices(head, infer_kind(head[features]), cfg.slices)
    return cols


def _check_table(sdf: Any, features: list[str], targets: str | None, row_key: str | None,
                 labels: Any) -> _Table:
    """One pass: the row count, the rows a model could not score (missing features or labels), the labels."""
    from pyspark.sql import functions as F

    checks = [F.count(F.lit(1)).alias("__n"), *_content_aggregates(sdf, _input_columns(features, targets, row_key))]
    numeric = {f.name for f in sdf.schema.fields if f.dataType.typeName() in ("double", "float")}
    for c in features + ([targets] if targets else []):
        bad = F.col(c).isNull() | (F.isnan(F.col(c)) if c in numeric else F.lit(False))
        checks.append(F.sum(bad.cast("long")).alias(c))
    if targets is not None:
        checks.append(F.collect_set(F.col(targets)).alias("__labels"))
    t0 = time.perf_counter()
    row = sdf.agg(*checks).collect()[0].asDict()
    seconds = time.perf_counter() - t0
    n = int(row.pop("__n"))
    content = {k: str(row.pop(k)) for k in ("__xx_sum", "__xx_xor", "__mm_sum")}
    values = list(row.pop("__labels", None) or [])
    if n == 0:
        raise InvalidInputError("the table is empty: there is nothing to compare")
    bad_cols = {c: int(v) for c, v in row.items() if v}
    if bad_cols:
        raise InvalidInputError(f"missing values (null or NaN) in {bad_cols} (column: rows); drop or impute them "
                                "first")
    return _Table(n, _target_codes(values, targets, labels) if targets is not None else None,
                  _content_digest(sdf, _input_columns(features, targets, row_key), n, content), seconds)


def _content_aggregates(sdf: Any, columns: list[str]) -> list[Any]:
    """Order-free sums of two of Spark's own row hashes (exact decimals: they never overflow)."""
    from pyspark.sql import functions as F

    cols = [F.col(c) for c in columns]
    xx = F.xxhash64(*cols)
    return [F.sum(xx.cast("decimal(38,0)")).alias("__xx_sum"), F.bit_xor(xx).alias("__xx_xor"),
            F.sum(F.hash(*cols).cast("decimal(38,0)")).alias("__mm_sum")]


def _content_digest(sdf: Any, columns: list[str], n: int, sums: Mapping[str, str]) -> str:
    types = {f.name: f.dataType.simpleString() for f in sdf.schema.fields if f.name in columns}
    payload = json.dumps({"columns": columns, "types": types, "n": n, **sums}, sort_keys=True)
    return f"spark-xxhash64-v1:{hashlib.sha256(payload.encode()).hexdigest()}"


def _target_codes(values: list[Any], targets: str, labels: Any) -> dict[Any, int]:
    from .adapters import encode_targets

    if len(values) > 10_000:
        raise InvalidInputError(f"targets column {targets!r} has over 10,000 distinct values: not class labels")
    codes = encode_targets(np.asarray(values, dtype=object), labels)
    return {v: int(c) for v, c in zip(values, codes)}


def _make_job(parent: Any, candidate: Any, cfg: TrustEqConfig, models: Any, sdf: Any, features: list[str],
              targets: str | None, row_key: str | None, table: _Table, *, sample_size: int,
              n_groups: int | None, slice_cols: tuple[str, ...] = ()) -> _Job:
    field_of = {f.name: f for f in sdf.schema.fields}
    job = _Job(tuple(features), targets, row_key,
               _model_spec(parent, cfg.parent_kwargs, "parent"),
               _model_spec(candidate, cfg.candidate_kwargs, "candidate"),
               dict(cfg.parent_kwargs), dict(cfg.candidate_kwargs), tuple(int(i) for i in models.perm),
               len(models.labels), table.target_map, cfg, min(1.0, 2.0 * sample_size / table.n + 64.0 / table.n), (),
               n_groups=n_groups, mlflow_uris=_mlflow_uris(), sample_size=sample_size,
               input_fields=tuple(field_of[c] for c in _input_columns(features, targets, row_key, slice_cols)),
               slice_columns=slice_cols)
    return dataclasses.replace(job, sample_fields=tuple(field_of[c] for c in job.sample_columns))


def _parent_cache_key(parent: Any, cfg: TrustEqConfig, job: _Job, table: _Table, sdf: Any) -> str | None:
    """The parent cache's key on Spark: the parent's content, the table's content and what changes the scores."""
    if not cfg.caches_parent():
        return None
    from ._cache import parent_table_key

    session = sdf.sparkSession
    settings = {"engine": "spark", "columns": [f.name for f in job.input_fields], "features": list(job.features),
                "parent_kwargs": dict(cfg.parent_kwargs), "labels": job.k,
                "arrow_batch": session.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")}
    key = parent_table_key(parent, table.content, settings=settings)
    # the stored frame lives in one SparkSession: another session (application) is another entry
    return None if key is None else f"{key}@{session.sparkContext.applicationId}"


def _scored_frame(sdf: Any, job: _Job, key: str | None) -> tuple[Any, bool]:
    """Both models' probabilities per row (lazy), and whether the parent's came from the parent cache.

    Without a key both models score in one pass. With one, the parent's probabilities are a frame
    of their own (the input columns, ``p*`` and the parent's seconds), persisted in the session and
    kept in the parent cache; the candidate then scores on that frame, and a later candidate on the
    same table reuses it instead of scoring the parent again.
    """
    if key is None:
        return sdf.mapInPandas(lambda it: _score_partition(job, it), schema=job.schema()), False
    from pyspark import StorageLevel

    from . import _cache

    parent_frame = _cache.get_parent_table(key)
    hit = parent_frame is not None
    if parent_frame is None:
        names = [f.name for f in job.input_fields]
        parent_frame = (sdf.select(*names).mapInPandas(lambda it: _parent_partition(job, it),
                                                       schema=job.parent_schema())
                        .persist(StorageLevel.MEMORY_AND_DISK))
        _cache.put_parent_table(key, parent_frame, release=lambda frame: frame.unpersist())
    return parent_frame.mapInPandas(lambda it: _candidate_partition(job, it), schema=job.schema()), hit


def _run_passes(scored: Any, job: _Job, n: int, quantile_relative_error: float) -> _Passes:
    """Score (persisted), the quantile pass, the sample and the partial sums; the scores are then freed."""
    from pyspark import StorageLevel

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        mass_edges, rank_bound = None, 0
        if job.target is not None:
            mass_edges, rank_bound = _mass_edges(scored, n, job.cfg.n_bins_equal_mass, quantile_relative_error)
        else:
            scored.count()  # materialise the scores
        timings["score_and_quantiles"] = time.perf_counter() - t_start
        t0 = time.perf_counter()
        sample = _draw_sample(scored, job)
        timings["sample"] = time.perf_counter() - t0
        state, n_parts = _merged_partials(scored, job, mass_edges)
    finally:
        scored.unpersist()
    wall = time.perf_counter() - t_start
    timings["sums"] = wall - timings["score_and_quantiles"]
    if state.n_rows != n:
        raise AssertionError(f"the executors summed {state.n_rows} rows of {n}")
    return _Passes(state, mass_edges, rank_bound, sample, n_parts, wall, timings)


def _draw_sample(scored: Any, job: _Job) -> pd.DataFrame:
    """The rows whose seeded key hash is lowest, whatever the partitioning (the sections' sample)."""
    from pyspark.sql import functions as F

    return (scored.filter(F.col("__u") < job.sample_threshold).toPandas()
            .sort_values("__u", kind="stable").head(job.sample_size).reset_index(drop=True))


def _merged_partials(scored: Any, job: _Job, mass_edges: dict[str, np.ndarray] | None
                     ) -> tuple[PartialSummary, int]:
    """Each partition's :class:`PartialSummary` (in the executors), merged on the driver as they arrive."""
    partials = scored.mapInPandas(lambda it: _sum_partition(job, mass_edges, it), schema="state binary")
    state: PartialSummary | None = None
    n_parts = 0
    for r in partials.toLocalIterator():
        part = PartialSummary.from_bytes(bytes(r["state"]))
        state = part if state is None else state.merge(part)
        n_parts += 1
    if state is None:
        raise AssertionError("the executors returned no partial summaries")
    return state, n_parts


def _engine_settings(job: _Job, passes: _Passes, *, n_partitions: int | None, sample_size: int,
                     quantile_relative_error: float) -> dict[str, Any]:
    return {
        "name": "spark", "partitions": n_partitions,
        "row_key": job.row_key or "hash of the row's features and label",
        "sample_size": len(passes.sample), "sample_requested": sample_size, "sample_seed": job.cfg.random_state,
        "sample_rule": "the rows with the lowest seeded hash of their row key",
        "quantile_relative_error": quantile_relative_error,
        "equal_mass_edge_rank_bound": passes.rank_bound,
        "predictions": "TrustReport.predictions and the sections hold the sample",
        "throughput": "rows over each model's summed scoring seconds in the executors (per core)",
        "wall_seconds": passes.wall,
    }


def _assemble(models: Any, cfg: TrustEqConfig, job: _Job, table: _Table, passes: _Passes, *, parent_cached: bool,
              n_partitions: int | None, sample_size: int, quantile_relative_error: float) -> TrustReport:
    """The report: the merged sums' metrics, and ``compare()``'s sections on the sample."""
    from .compare import _encode_gold, _Inputs, _measure, _Scores, _split_data, infer_kind

    engine = _engine_settings(job, passes, n_partitions=n_partitions, sample_size=sample_size,
                              quantile_relative_error=quantile_relative_error)
    logger.info("spark engine sample for the sections: %d rows, seed %d; equal-mass edges within %d rank(s)",
                len(passes.sample), cfg.random_state, passes.rank_bound)
    summary = summary_from_partials(passes.state, cfg=cfg, has_targets=job.target is not None,
                                    mass_edges=passes.mass_edges, n_groups=job.n_groups)
    sample = passes.sample
    frame = sample[[f"__s_{c}" for c in job.sample_columns]].rename(columns=lambda c: c[len("__s_"):])
    records, _, y_raw, _ = _split_data(frame, job.target, list(job.features))
    inputs = _Inputs(frame, records, infer_kind(records), y_raw, job.target)
    scores = _Scores(sample[[f"p{j}" for j in range(job.k)]].to_numpy(dtype=np.float64),
                     sample[[f"q{j}" for j in range(job.k)]].to_numpy(dtype=np.float64),
                     passes.state.seconds["parent"], passes.state.seconds["candidate"], parent_cached=parent_cached)
    y = _encode_gold(inputs, models)
    report = _measure(models, inputs, scores, y, cfg, summary=summary, n_examples=table.n,
                      digest=_digest(list(job.features), job.target is not None, passes.state),
                      extra_settings={"engine": engine})
    return _update_on_sample(report, scores, y, cfg, passes.state)


def _update_on_sample(report: TrustReport, scores: Any, y: np.ndarray | None, cfg: TrustEqConfig,
                      state: PartialSummary) -> TrustReport:
    """The model-update metrics: the counted ones from the whole table, the AURCs on the sample.

    The flip split, BTC/BEC and McNemar's test are functions of counts that the partial sums hold
    (:func:`_update_counts`), so they are measured on every row. The AURCs are not sums the
    executors can merge (they need the rows in confidence order): the engine measures them, like
    the sections, on its hash-drawn sample, with intervals for the sample's size;
    ``settings["update"]["measured_on"]`` says which is which.
    """
    if y is None or "update" not in report.skipped:
        return report
    from .metrics.update import summarize_update

    result = summarize_update(y, scores.parent, scores.candidate, n_resamples=cfg.n_resamples,
                              confidence=cfg.confidence, random_state=cfg.random_state,
                              counts=_update_counts(state, cfg))
    skipped = {k: v for k, v in report.skipped.items() if k != "update"}
    update = {**result.to_dict(), "measured_on": (
        f"all {report.n_examples} rows (merged counts) for the flip split, BTC/BEC and McNemar's test; the AURCs "
        f"on the Spark engine's sample of {len(y)} rows (the lowest seeded hashes of the row keys)")}
    return dataclasses.replace(report, metrics={**report.metrics, **result.estimates}, skipped=skipped,
                               settings={**report.settings, "update": update})


def _update_counts(state: PartialSummary, cfg: TrustEqConfig) -> Any:
    """The :class:`~mlflow_trusteq.metrics.update.UpdateCounts` of the whole table, from its merged sums."""
    from .metrics.update import UpdateCounts

    layout = _layout(True, cfg)
    pair = dict(zip(layout.pair_fields, state.pair_total[0]))
    right = {m: int(round(float(state.models_total[m][0][layout.MODEL_FIELDS.index("correct")])))
             for m in ("parent", "candidate")}
    n, agree = state.n_rows, int(np.trace(state.flips))
    nf, pf = int(round(float(pair["negative_flip"]))), int(round(float(pair["positive_flip"])))
    return UpdateCounts(n, right["parent"], right["candidate"], nf, pf, n - agree - nf - pf)


def _mass_edges(scored: Any, n: int, n_bins: int, rel_err: float) -> tuple[dict[str, np.ndarray], int]:
    """Each model's equal-mass edges from one quantile pass, and the bound on their rank error."""
    ranks = _mass_ranks(n, n_bins)
    # approxQuantile(p) is the value of 1-based rank ceil(p * n) when exact: p = (rank + 0.5) / n hits rank + 1
    # (0 and 1 give the minimum and the maximum, the outer edges)
    probs = [0.0, *(float((s + 0.5) / n) for s in ranks), 1.0]
    qs = scored.approxQuantile(["__pconf", "__qconf"], probs, rel_err)
    edges = {role: np.asarray(q, dtype=np.float64) for role, q in zip(("parent", "candidate"), qs)}
    return edges, int(math.ceil(rel_err * n))


def _digest(features: list[str], has_targets: bool, state: PartialSummary) -> str:
    payload = json.dumps({"columns": features, "targets": has_targets, "n": state.n_rows,
                          "sum": str(state.digest[0]), "xor": str(state.digest[1]), "mixsum": str(state.digest[2])},
                         sort_keys=True)
    return f"{DIGEST_SCHEME}:{hashlib.sha256(payload.encode()).hexdigest()}"


# ----------------------------------------------------------------------------- mlflow.models.evaluate at scale
#: what ``mlflow.models.evaluate`` keeps of a Spark DataFrame (``EvaluationDataset.SPARK_DATAFRAME_LIMIT``)
MLFLOW_SPARK_LIMIT = 10_000


def table_behind_cut_dataset(run_id: str, n_rows: int, client: Any = None, dataset: Any = None) -> Any | None:
    """The whole Spark table behind an evaluation that MLflow cut to its first 10,000 rows.

    ``mlflow.models.evaluate`` turns a Spark DataFrame into its first 10,000 rows before any
    evaluator sees it, and logs the dataset (with its approximate row count) to the run. This
    returns ``None`` when nothing was cut, else the whole table as a Spark DataFrame, found

    1. in the running ``mlflow.models.evaluate`` call (:func:`spark_frame_behind`: the DataFrame it
       was given, whatever built it), when ``dataset`` (what the evaluator received) is passed; else
    2. from the dataset logged to the run, when its source can be read again
       (``mlflow.data.from_spark(df, path=...)`` or ``table_name=...``, or a Delta table).

    Raises
    ------
    InvalidInputError
        The table was cut and neither way reaches all of it: the message says how to evaluate all of it.
    """
    if n_rows < MLFLOW_SPARK_LIMIT:
        return None
    whole = spark_frame_behind(dataset) if dataset is not None else None
    if whole is not None:
        total = int(whole.count())
        if total <= n_rows:
            return None
        logger.warning("mlflow.models.evaluate cut this Spark DataFrame to its first %d rows; trusteq evaluates all "
                       "%d rows of it with the Spark engine", n_rows, total)
        return whole
    if client is None:
        from mlflow import MlflowClient

        client = MlflowClient()
    refusal: InvalidInputError | None = None
    for ds, logged_count in _logged_spark_datasets(client, run_id):
        if logged_count is not None and logged_count <= n_rows:
            return None
        loaded = _load_logged_source(ds)
        if loaded is None:
            refusal = refusal or _cut_refusal(n_rows, logged_count)
            continue
        count = logged_count if logged_count is not None else float(loaded.count())
        if count <= n_rows:
            return None
        logger.warning("MLflow cut the Spark table %s to its first %d rows; trusteq evaluates all ~%d rows of it "
                       "with the Spark engine", ds.source, n_rows, int(count))
        return loaded
    if refusal is not None:  # no logged Spark dataset of this run can be read again
        raise refusal
    return None


def spark_frame_behind(dataset: Any) -> Any | None:
    """The whole Spark DataFrame that the running ``mlflow.models.evaluate`` call cut into ``dataset``.

    MLflow gives an evaluator only an ``EvaluationDataset`` of the first 10,000 rows
    (``SparkDataset.to_evaluation_dataset``); the ``SparkDataset`` it made from the user's Spark
    DataFrame, and the whole DataFrame it holds, is still the ``data`` of the ``evaluate`` call on
    the stack. This finds it there and returns its DataFrame only when its digest is the
    digest of ``dataset`` (the cut was made from it). ``None`` when there is none (another caller,
    or an MLflow that passes data differently: the pinned MLflow minor is tested).
    """
    digest = getattr(dataset, "digest", None)
    if not digest:
        return None
    from mlflow.data.spark_dataset import SparkDataset

    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "evaluate" and frame.f_globals.get("__name__") == "mlflow.models.evaluation.base":
            data = frame.f_locals.get("data")
            if isinstance(data, SparkDataset) and data.digest == digest:
                return data.df
            return None
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _logged_spark_datasets(client: Any, run_id: str) -> Iterator[tuple[Any, float | None]]:
    """The run's logged Spark datasets, newest first, each with its approximate row count (``None``: unknown)."""
    inputs = getattr(client.get_run(run_id), "inputs", None)
    for di in reversed(list(getattr(inputs, "dataset_inputs", None) or [])):
        ds = di.dataset
        try:
            profile = json.loads(ds.profile or "{}")
        except (TypeError, ValueError):
            continue
        if not isinstance(profile, dict) or "approx_count" not in profile:
            continue  # not a Spark dataset
        try:
            count: float | None = float(profile["approx_count"])
        except (TypeError, ValueError):  # "unknown": MLflow's approximate count timed out
            count = None
        yield ds, count


def _load_logged_source(ds: Any) -> Any | None:
    """The whole table a logged dataset names (a path, a table name, a Delta table), or ``None``."""
    source = json.loads(ds.source or "{}")
    if ds.source_type not in ("spark", "delta_table") or not source:
        return None
    if ds.source_type == "spark":
        from mlflow.data.spark_dataset_source import SparkDatasetSource

        return SparkDatasetSource.from_dict(source).load()
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    return DeltaDatasetSource.from_dict(source).load()


def _cut_refusal(n_rows: int, count: float | None) -> InvalidInputError:
    about = f"about {int(count):,}" if count is not None else "an unknown number of rows"
    return InvalidInputError(
        f"mlflow.models.evaluate kept only the first {n_rows:,} rows of this Spark DataFrame (it has {about}); "
        "trusteq does not judge a cut table. Evaluate all of it: pass "
        "data=mlflow.data.from_spark(df, path=<parquet path>) or table_name=<table> (trusteq then reads the "
        "whole table with its Spark engine), or call mlflow_trusteq.integration.evaluate_and_log(model, df, "
        "config={'parent': ..., 'engine': 'spark'}), or run `trusteq evaluate --engine spark --data <path>`")
