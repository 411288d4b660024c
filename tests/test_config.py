"""One config object, parsed in one place, used by compare(), the evaluator and the CLI (issue 11)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from mlflow_trusteq import InvalidInputError, TrustEqConfig, compare


def test_unknown_keys_name_the_key_and_every_valid_one():
    with pytest.raises(InvalidInputError) as err:
        TrustEqConfig.from_mapping({"n_resample": 10})
    msg = str(err.value)
    assert "['n_resample']" in msg
    for name in TrustEqConfig.field_names():
        assert repr(name) in msg


@pytest.mark.parametrize("bad", [{"n_resamples": 0}, {"chunk_size": -1}, {"n_bins_equal_mass": 2.5},
                                 {"max_disagreements": True}, {"parent": 3}])
def test_bad_values_are_errors_that_name_the_field(bad):
    with pytest.raises(InvalidInputError, match=next(iter(bad))):
        TrustEqConfig.from_mapping(bad)


def test_from_mapping_parses_parent_mappings_and_overrides():
    cfg = TrustEqConfig.from_mapping({"parent": {"name": "m", "version": 3}, "feature_columns": ["a", "b"]},
                                     n_resamples=7)
    assert cfg.parent == "models:/m/3" and cfg.feature_columns == ("a", "b") and cfg.n_resamples == 7
    assert TrustEqConfig.from_mapping(cfg, js_base=math.e).js_base == math.e and cfg.js_base == 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.js_base = 3.0  # type: ignore[misc]


def test_the_integration_config_is_the_same_object():
    from mlflow_trusteq.integration import TrustEqConfig as Integration
    from mlflow_trusteq.integration.config import TrustEqConfig as Module

    assert Integration is TrustEqConfig is Module


def test_compare_takes_a_config_and_keyword_overrides_alike(tfidf_pair, sst2_small):
    parent, candidate = tfidf_pair
    _, dev = sst2_small
    dev = dev.iloc[:120]
    by_config = compare(parent, candidate, dev, targets="label", config=TrustEqConfig(n_resamples=50, js_base=math.e))
    by_kwargs = compare(parent, candidate, dev, targets="label", n_resamples=50, js_base=math.e)
    mixed = compare(parent, candidate, dev, targets="label", config={"n_resamples": 50}, js_base=math.e)
    for key in ("probability_loyalty", "diff/ece_equal_mass", "candidate/log_loss"):
        assert by_config.metrics[key] == by_kwargs.metrics[key] == mixed.metrics[key], key
    assert by_config.settings["js_base"] == math.e and by_config.settings["n_resamples"] == 50
    with pytest.raises(InvalidInputError, match="n_resample'"):
        compare(parent, candidate, dev, targets="label", n_resample=50)


def test_each_setting_is_recorded_once_under_its_config_name(tfidf_pair, sst2_small):
    parent, candidate = tfidf_pair
    _, dev = sst2_small
    rep = compare(parent, candidate, dev.iloc[:80], targets="label", n_resamples=20)
    top, metric_layer = set(rep.settings), set(rep.settings["metrics"])
    assert not top & metric_layer, f"recorded twice: {top & metric_layer}"
    assert "base" not in metric_layer and rep.settings["js_base"] == 2.0
    measured = {"js_base", "n_bins_equal_width", "n_bins_equal_mass", "min_bin_count", "n_resamples", "confidence",
                "random_state", "chunk_size"}
    assert measured <= top and measured <= set(TrustEqConfig.field_names())
