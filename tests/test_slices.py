"""Per-slice trust-equivalence (issue 15): slice specs, per-slice numbers, gating on slices.

The constructed pair: a candidate that flips 30 % of the labels in one slice of 5 % of the rows
(``channel=kiosk``), and nothing elsewhere. Its aggregate label loyalty (0.985 on 4,000 rows) passes
the 0.95 bar with room to spare; the slice check fails and names the slice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_trusteq import Estimate, InvalidInputError, Policy, PolicyError, TrustEqConfig, as_proba_model, compare
from mlflow_trusteq.compare import TrustReport
from mlflow_trusteq.slices import MAX_SLICE_VALUES, normalize_slice_specs, slice_columns

LABELS = ["neg", "pos"]
N = 4000
N_KIOSK = 200  # 5 % of the rows


def _ids(batch) -> np.ndarray:
    return np.array([int(t.split()[1]) for t in batch])


def _parent_fn(batch) -> np.ndarray:
    ids = _ids(batch)
    p = 0.55 + 0.4 * ((ids * 7919) % 100) / 100
    return np.where((ids % 2)[:, None] == 0, np.c_[p, 1 - p], np.c_[1 - p, p])


def _candidate_fn(batch) -> np.ndarray:
    """The parent, except that it flips 3 in 10 of the texts that mention the kiosk."""
    out = _parent_fn(batch)
    flip = np.array(["kiosk" in t for t in batch]) & (_ids(batch) % 10 < 3)
    out[flip] = out[flip][:, ::-1]
    return out


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    channel = np.array(["web", "app", "mail"], dtype=object)[rng.integers(0, 3, N)]
    channel[:N_KIOSK] = "kiosk"
    texts = [f"review {i} {'kiosk ' if c == 'kiosk' else ''}" + " ".join(["w"] * (i % 17 + 1))
             for i, c in enumerate(channel)]
    return pd.DataFrame({"text": texts, "channel": channel, "label": np.arange(N) % 2})


def _models():
    return (as_proba_model(_parent_fn, labels=LABELS, name="parent", input_kind="text"),
            as_proba_model(_candidate_fn, labels=LABELS, name="candidate", input_kind="text"))


def _each(verdict, metric: str = "label_loyalty"):
    return next(c for c in verdict.checks if c.metric == f"slices/each/{metric}")


OPTS = {"n_resamples": 200, "consistency": False}
POLICY = {"name": "slices", "checks": {"label_loyalty": {"threshold": 0.95, "slices": "all"}}}


@pytest.fixture(scope="module")
def sliced() -> TrustReport:
    parent, candidate = _models()
    return compare(parent, candidate, _frame(), targets="label", slices=["channel"], **OPTS)


def test_aggregate_passes_and_the_slice_check_fails_naming_the_slice(sliced):
    verdict = Policy.from_dict(POLICY).judge(sliced)
    by_metric = {c.metric: c for c in verdict.checks}
    aggregate, each = by_metric["label_loyalty"], by_metric["slices/each/label_loyalty"]
    assert sliced.value("label_loyalty") == pytest.approx(1 - 60 / N)
    assert aggregate.status == "pass" and aggregate.bound > 0.95
    assert each.status == "fail" and not verdict.passed and verdict.label == "fail"
    assert "label_loyalty on slice channel=kiosk (n=200): 0.7 [" in each.reason
    assert "< 0.95 (Bonferroni over 4 slices)" in each.reason
    assert "channel=web" not in each.reason  # only the failing slice is named
    assert any("channel=kiosk" in r for r in verdict.reasons)
    detail = verdict.extra["slices"]["slices/each/label_loyalty"]
    assert detail["m"] == 4 and {s["slice"]: s["status"] for s in detail["slices"]}["channel=kiosk"] == "fail"


def test_slice_interval_is_clopper_pearson_at_the_bonferroni_level(sliced):
    smp = pytest.importorskip("statsmodels.stats.proportion")
    kiosk = next(s for s in sliced.slices().slices if s.name == "channel=kiosk")
    assert kiosk.n == N_KIOSK and kiosk.n_flips == 60
    lo, hi = smp.proportion_confint(140, 200, alpha=0.05 / 4, method="beta")
    fam = kiosk.family["label_loyalty"]
    assert (fam.lower, fam.upper) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert fam.confidence == pytest.approx(1 - 0.05 / 4)
    lo95, hi95 = smp.proportion_confint(140, 200, alpha=0.05, method="beta")
    assert kiosk.estimates["label_loyalty"].lower == pytest.approx(lo95, abs=1e-12)
    assert sliced.slices().family_confidence == pytest.approx(0.9875)


def test_each_slice_holds_what_compare_gives_on_its_rows(sliced):
    frame = _frame()
    parent, candidate = _models()
    result = sliced.slices()
    for name in ("channel=kiosk", "channel=web"):
        s = next(x for x in result.slices if x.name == name)
        subset = frame[frame["channel"] == name.split("=")[1]]
        alone = compare(parent, candidate, subset[["text", "label"]], targets="label", **OPTS)
        assert s.n == len(subset) == alone.n_examples
        assert set(s.estimates) <= set(alone.metrics)
        for key, est in s.estimates.items():
            assert est == alone.metrics[key], key


def test_the_slice_column_is_not_a_feature_unless_named(sliced):
    assert sliced.feature_columns == ("text",)
    seen: list[list[str]] = []

    def tabular(batch):
        seen.append(list(batch.columns))
        x = batch["x"].to_numpy(dtype=float)
        return np.c_[x, 1 - x]

    df = pd.DataFrame({"x": np.linspace(0.01, 0.99, 120), "segment": ["a", "b", "c"] * 40,
                       "y": [0, 1] * 60})
    model = as_proba_model(tabular, labels=LABELS, input_kind="tabular")
    r = compare(model, model, df, targets="y", slices="segment", **OPTS)
    assert r.feature_columns == ("x",) and all(cols == ["x"] for cols in seen)
    assert [s.name for s in r.slices().slices] == ["segment=a", "segment=b", "segment=c"]
    # named as a feature too, it is read by the models and still cuts the slices
    df["segment"] = [0, 1, 2] * 40
    seen.clear()
    r = compare(model, model, df, targets="y", slices="segment", feature_columns=["x", "segment"], **OPTS)
    assert r.feature_columns == ("x", "segment") and seen and all(cols == ["x", "segment"] for cols in seen)
    assert [s.n for s in r.slices().slices] == [40, 40, 40]


def test_builtin_slices_cover_class_confidence_and_length(sliced):
    parent, candidate = _models()
    r = compare(parent, candidate, _frame().drop(columns="channel"), targets="label", slices="builtin", **OPTS)
    result = r.slices()
    assert result.specs == ("parent_class", "parent_confidence", "input_length")
    by_spec = {spec: result.of_spec(spec) for spec in result.specs}
    assert [s.name for s in by_spec["parent_class"]] == ["parent_class=neg", "parent_class=pos"]
    for spec, slices in by_spec.items():
        assert sum(s.n for s in slices) == N, spec  # every spec is a partition of the rows
    assert len(by_spec["parent_confidence"]) == 4 and all(900 <= s.n <= 1100 for s in by_spec["parent_confidence"])
    words = np.array([len(t.split()) for t in _frame()["text"]])
    first = by_spec["input_length"][0]
    lo, hi = (int(v) for v in first.name.split("=")[1].split("-"))
    assert first.n == int(((words >= lo) & (words <= hi)).sum())
    assert set(r.metrics) >= {"slices/worst/label_loyalty", "slices/worst/probability_loyalty"}
    worst = result.worst("label_loyalty")
    assert r.metrics["slices/worst/label_loyalty"] == worst.estimates["label_loyalty"]
    assert 0.95 < worst.estimates["label_loyalty"].value < r.value("label_loyalty")  # no kiosk spec: flips spread


def test_binning_puts_a_value_on_an_edge_in_the_lower_bin_and_never_splits_ties():
    from mlflow_trusteq.slices import _bins

    index, names = _bins(np.arange(1.0, 9.0), 4, integer=True)
    assert names == ["1-2", "3-4", "5-6", "7-8"] and index.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    x = np.array([1.0] * 50 + [2.0] * 30 + [3.0] * 20)
    index, names = _bins(x, 4, integer=True)
    assert names == ["1", "2", "3"]  # the quartile edges 1, 1, 1.5, 2, 3: repeated ones dropped
    assert [int((index == b).sum()) for b in range(3)] == [50, 30, 20]
    index, names = _bins(np.array([0.2, 0.4, 0.6, 0.8]), 2, integer=False)
    assert names == ["[0.2, 0.5]", "(0.5, 0.8]"] and index.tolist() == [0, 0, 1, 1]


def test_many_values_are_binned_when_numeric_and_an_error_otherwise():
    calls: list[int] = []

    def fn(b):
        calls.append(len(b))
        return np.c_[b["x"].to_numpy(), 1 - b["x"].to_numpy()]

    model = as_proba_model(fn, labels=LABELS, input_kind="tabular")
    df = pd.DataFrame({"x": np.linspace(0.01, 0.99, 100), "age": np.arange(100) * 1.5,
                       "city": [f"c{i % 30}" for i in range(100)], "y": [0, 1] * 50})
    r = compare(model, model, df, targets="y", slices=["age", "age:5"], feature_columns=["x"], **OPTS)
    assert [s.n for s in r.slices().of_spec("age")] == [25] * 4
    assert [s.n for s in r.slices().of_spec("age:5")] == [20] * 5
    with pytest.raises(InvalidInputError, match=rf"slice column 'city' has 30 distinct values \(more than "
                                                 rf"{MAX_SLICE_VALUES}\)"):
        compare(model, model, df, targets="y", slices="city", feature_columns=["x"], **OPTS)
    with pytest.raises(InvalidInputError, match=r"slice column\(s\) \['region'\] not in the data"):
        compare(model, model, df, targets="y", slices="region", feature_columns=["x"], **OPTS)
    with pytest.raises(InvalidInputError, match="input_length' needs text inputs"):
        compare(model, model, df, targets="y", slices="input_length", feature_columns=["x"], **OPTS)
    with pytest.raises(InvalidInputError, match="only a numeric column can be binned"):
        compare(model, model, df, targets="y", slices="city:3", feature_columns=["x"], **OPTS)
    calls.clear()
    with pytest.raises(InvalidInputError, match="slice column 'city'"):
        compare(model, model, df, targets="y", slices=["builtin", "city"], feature_columns=["x"], **OPTS)
    assert calls == []  # bad slices are an error before anything is scored
    r = compare(model, model, df, targets="y", slices="builtin", feature_columns=["x"], **OPTS)
    assert r.slices().specs == ("parent_class", "parent_confidence")  # no word count for tabular rows


def test_a_cross_of_two_specs_is_every_pair_of_values(sliced):
    parent, candidate = _models()
    r = compare(parent, candidate, _frame(), targets="label", slices="channel*parent_class", **OPTS)
    slices = r.slices().slices
    assert len(slices) == 8 and sum(s.n for s in slices) == N
    kiosk_neg = next(s for s in slices if s.name == "channel=kiosk & parent_class=neg")
    assert kiosk_neg.n == 100 and kiosk_neg.n_flips == 40  # even ids (neg) with id % 10 in (0, 2)


def test_slices_round_trip_through_the_report_json(sliced):
    back = TrustReport.from_json(sliced.to_json())
    assert back.slices() == sliced.slices()
    assert back.to_dict()["sections"]["slices"] == sliced.to_dict()["sections"]["slices"]
    ex = back.slices().examples["channel=kiosk"]
    assert ex and all(r["flipped"] for r in ex) and {"text", "parent_label", "candidate_label"} <= set(ex[0])


def test_config_reads_slices_from_every_entry_point():
    assert TrustEqConfig.from_mapping({"slices": "builtin, channel"}).slices == ("builtin", "channel")
    assert TrustEqConfig.from_mapping({"slices": True}).slices == ("builtin",)
    assert TrustEqConfig().slices is None and normalize_slice_specs([]) is None
    assert slice_columns(("builtin", "a*parent_class", "b:3")) == ("a", "b")
    for bad, words in (("a*b*c", "a cross has two parts"), ("parent_class:3", "takes no bins"),
                       ("builtin*a", "cannot be crossed"), (["x", 3], "must be a spec string")):
        with pytest.raises(InvalidInputError, match=words):
            TrustEqConfig.from_mapping({"slices": bad})


def test_cli_slice_flags_reach_the_config():
    from mlflow_trusteq.cli import CONFIG_OPTIONS, config_from_options, evaluate_command

    args = ["models:/m/2", "--data", "d.csv", "--slice", "builtin", "--slices", "region*parent_class"]
    params = evaluate_command.make_context("evaluate", args).params
    cfg = config_from_options({k: params[k] for k in CONFIG_OPTIONS})
    assert cfg.slices == ("builtin", "region*parent_class")
    plain = evaluate_command.make_context("evaluate", ["models:/m/2", "--data", "d.csv"]).params
    assert config_from_options({k: plain[k] for k in CONFIG_OPTIONS}).slices is None


# ----------------------------------------------------------------------------- the policy on slices
def test_a_policy_on_slices_without_slices_fails_closed():
    parent, candidate = _models()
    r = compare(parent, candidate, _frame().iloc[200:], targets="label", feature_columns=["text"], **OPTS)
    v = Policy.from_dict(POLICY).judge(r)
    each = next(c for c in v.checks if c.metric == "slices/each/label_loyalty")
    assert each.status == "fail" and "not requested" in each.reason and not v.passed
    assert v.label == "incomplete"  # nothing measured failed: slices are missing


def test_unknown_specs_fail_and_small_slices_are_listed_not_judged(sliced):
    v = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.95, "slices": ["region"]}}}).judge(sliced)
    assert "slice spec(s) ['region'] were not measured" in _each(v).reason and not v.passed
    # the loyal rows only: 3,800 rows of web/app/mail, and a tiny kiosk slice of 20 loyal rows
    frame = _frame()
    keep = np.r_[np.flatnonzero(frame["channel"] == "kiosk")[3::10][:20], np.arange(N_KIOSK, N)]
    parent, candidate = _models()
    r = compare(parent, candidate, frame.iloc[keep], targets="label", slices="channel", **OPTS)
    v = Policy.from_dict(POLICY).judge(r)
    each = _each(v)
    assert v.passed and each.status == "pass", each.reason
    assert "1 slice(s) not judged" in each.reason and "channel=kiosk (n=20)" in each.reason
    status = {s["slice"]: s["status"] for s in v.extra["slices"][each.metric]["slices"]}
    assert status == {"channel=app": "pass", "channel=kiosk": "not judged", "channel=mail": "pass",
                      "channel=web": "pass"}


def test_the_minimum_size_follows_the_corrected_level(sliced):
    from mlflow_trusteq.metrics import min_examples

    need_95 = min_examples("clopper_pearson", threshold=0.95)
    need_family = min_examples("clopper_pearson", threshold=0.95, confidence=sliced.slices().family_confidence)
    assert need_95 == 72 and need_family == 99  # 0.025 ** (1 / 72) and 0.00625 ** (1 / 99) reach 0.95
    v = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.95, "slices": "all"}}}).judge(sliced)
    assert all(s["status"] != "not judged" for s in v.extra["slices"]["slices/each/label_loyalty"]["slices"])


def test_point_mode_and_margins_are_judged_per_slice(sliced):
    v = Policy.from_dict({"decide_on": "point", "checks": {
        "label_loyalty": {"threshold": 0.69, "slices": "all"}}}).judge(sliced)
    assert v.passed and "point estimates" in _each(v).reason
    v = Policy.from_dict({"checks": {"diff/accuracy": {"margin": 0.05, "slices": "all"}}}).judge(sliced)
    each = _each(v, "diff/accuracy")
    assert each.status == "fail" and "diff/accuracy on slice channel=kiosk" in each.reason
    assert "outside ±0.05" in each.reason and each is _each(v, "diff/accuracy")


def test_policy_slices_parse_strictly_and_keep_old_digests():
    p = Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.95, "slices": ["parent_class", "x*y"]}}})
    assert p.checks[0].slices == ("parent_class", "x*y")
    assert Policy.from_dict(p.to_dict()).checks == p.checks and Policy.from_dict(p.to_dict()).digest == p.digest
    assert "slices" not in Policy.default().to_dict()["checks"]["label_loyalty"]
    for bad, words in (("some", "must be \"all\" or a non-empty list"), ([], "non-empty list"),
                       (["a*b*c"], "a cross has two parts")):
        with pytest.raises(PolicyError, match=words):
            Policy.from_dict({"checks": {"label_loyalty": {"threshold": 0.9, "slices": bad}}})
    with pytest.raises(PolicyError, match="slices apply to the fidelity"):
        Policy.from_dict({"checks": {"speedup": {"threshold": 1.0, "slices": "all"}}})


def test_identical_models_pass_on_every_slice():
    parent, _ = _models()
    r = compare(parent, parent, _frame(), targets="label", slices="builtin", feature_columns=["text"], **OPTS)
    v = Policy.from_dict(POLICY).judge(r)
    assert v.passed and _each(v).status == "pass"
    assert all(s.estimates["label_loyalty"].value == 1.0 for s in r.slices().slices)
    assert r.value("slices/worst/label_loyalty") == 1.0


def test_headline_is_the_slice_surely_lowest_not_the_smallest(sliced):
    worst = sliced.slices().worst("label_loyalty")
    assert worst.name == "channel=kiosk"
    assert sliced.metrics["slices/worst/label_loyalty"] == worst.estimates["label_loyalty"]
    ranked = sliced.slices().ranked("flips")
    assert ranked[0].name == "channel=kiosk" and ranked[0].n_flips == 60
    assert isinstance(sliced.metrics["slices/worst/probability_loyalty"], Estimate)
