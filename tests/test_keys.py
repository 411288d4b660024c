"""The metric-key grammar and the metric registry exist once (issue 11)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlflow_trusteq._keys import METRIC_INFO, MetricInfo, MetricKey, format_key, parse_key, parse_mlflow_name, \
    register_metric

PKG = Path(__file__).resolve().parents[1] / "mlflow_trusteq"
GOLDEN = Path(__file__).resolve().parent / "golden"


def _golden_keys() -> set[str]:
    return {k for f in GOLDEN.glob("*/report.json") for k in json.loads(f.read_text())["metrics"]}


@pytest.mark.parametrize("key, parsed", [
    ("label_loyalty", MetricKey("label_loyalty")),
    ("diff/ece_equal_mass", MetricKey("ece_equal_mass", "diff")),
    ("alignment/lime/noise_floor/top_k_jaccard",
     MetricKey("top_k_jaccard", None, "alignment", "lime", ("noise_floor",))),
    ("robustness/char/own/candidate/accuracy", MetricKey("accuracy", "candidate", "robustness", "char", ("own",))),
    ("robustness/word/reverse/transfer_rate", MetricKey("transfer_rate", None, "robustness", "word", ("reverse",))),
])
def test_keys_parse_into_their_parts(key, parsed):
    assert parse_key(key) == parsed
    assert format_key(parsed) == key


@pytest.mark.parametrize("bad", ["", "a//b", "foo/accuracy", "alignment/top_k_jaccard", "x/parent/accuracy"])
def test_malformed_keys_are_errors_that_name_the_key(bad):
    with pytest.raises(ValueError, match="malformed metric key"):
        parse_key(bad)


def test_every_produced_key_round_trips_and_is_registered():
    keys = _golden_keys() | {"speedup", "parent/throughput", "candidate/throughput"}
    assert any(k.startswith("alignment/") for k in keys) and any(k.startswith("robustness/") for k in keys)
    for key in keys:
        assert format_key(parse_key(key)) == key
        assert parse_key(key).metric in METRIC_INFO, f"{key}: its metric is not registered in _keys"


def test_each_metric_is_registered_once_in_one_module():
    """Two registrations of one name with different words made the registry depend on import order."""
    found: dict[str, list[str]] = {}
    for path in PKG.rglob("*.py"):
        for name in re.findall(r"MetricInfo\(\s*\"(\w+)\"", path.read_text()):
            found.setdefault(name, []).append(str(path.relative_to(PKG)))
    assert found, "no MetricInfo registrations found"
    twice = {n: where for n, where in found.items() if len(where) > 1}
    assert not twice, f"registered more than once: {twice}"
    assert {w[0] for w in found.values()} == {"_keys.py"}
    assert set(found) == set(METRIC_INFO)


def test_registering_a_name_again_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_metric(MetricInfo("label_loyalty", True))


def test_importing_the_sections_leaves_the_registry_as_it_is():
    before = dict(METRIC_INFO)
    import mlflow_trusteq.attack  # noqa: F401
    import mlflow_trusteq.explain  # noqa: F401

    assert METRIC_INFO == before and all(METRIC_INFO[k] is v for k, v in before.items())


def test_groups_and_skip_entries_follow_the_registry():
    assert parse_key("negative_flip_rate").group == "fidelity"
    assert parse_key("negative_flip_rate").skipped_under == "accuracy"
    assert parse_key("diff/brier_loss").group == "calibration" == parse_key("diff/brier_loss").skipped_under
    assert parse_key("size_ratio").skipped_under == "size_ratio"
    assert parse_key("alignment/shap/top_k_jaccard").group == "alignment"
    assert parse_key("robustness/char/parent/mean_queries").skipped_under == "robustness"


def test_mlflow_names_parse_back():
    key, bound = parse_mlflow_name("trusteq/robustness/char/parent/after_attack_accuracy/ci_lower")
    assert key.role == "parent" and key.section == "robustness" and bound == "ci_lower"
    assert parse_mlflow_name("trusteq/verdict") is None and parse_mlflow_name("accuracy") is None


@pytest.mark.parametrize("module", ["_types.py", "compare.py", "policy.py", "report/_table.py", "report/summary.py",
                                    "integration/evaluator.py", "integration/runlog.py"])
def test_no_module_parses_keys_by_hand(module):
    src = (PKG / module).read_text()
    for pattern in (r'\.r?split\(\s*"/"', r'startswith\(\s*"trusteq/', r'startswith\(\s*\(?"(ece_|candidate/)',
                    r'endswith\(\s*"flip_rate"'):
        assert not re.search(pattern, src), f"{module} parses metric keys itself ({pattern}); use mlflow_trusteq._keys"
