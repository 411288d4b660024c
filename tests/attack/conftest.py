"""Fixtures of the attack tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sst2_dev_frame(sst2_small):
    _, dev = sst2_small
    return dev[["sentence"]].iloc[:120].reset_index(drop=True), dev["label"].to_numpy()[:120]
