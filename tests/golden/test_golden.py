"""The restructuring (issue 11) changes no number: fixed-seed reports equal the recorded ones."""

from __future__ import annotations

import pytest

from tests.golden import _golden


@pytest.mark.parametrize("name", sorted(_golden.PAIRS))
def test_reports_match_golden_files(name):
    produced = _golden.PAIRS[name]()
    for fname, text in produced.items():
        expected = (_golden.HERE / name / fname).read_text()
        assert text == expected, (f"{name}/{fname} differs from the golden file; if the change is intended, "
                                  "regenerate with `python -m tests.golden._golden` and say why in the commit")
