"""The WordNet reader: real database files, checked against entries read by hand from them."""

from __future__ import annotations

import pytest
from _attack_models import needs_wordnet

from mlflow_trusteq._errors import InvalidInputError, MissingDependencyError
from mlflow_trusteq.attack.wordnet import WordNet, find_wordnet_dir

pytestmark = needs_wordnet


@pytest.fixture(scope="module")
def wn():
    return WordNet()


def test_version_and_source(wn):
    assert wn.version.startswith("WordNet 3")
    assert str(wn.path) in wn.source


def test_sensible_synonyms(wn):
    good = wn.synonyms("good")
    assert {"beneficial", "well", "estimable", "respectable"} <= set(good)
    assert "good" not in good
    assert "film" in wn.synonyms("movie")
    assert {"film", "flick", "picture"} <= set(wn.synonyms("movie", "n"))
    assert "boring" in wn.synonyms("dull", "a")
    # multi-word expressions (motion_picture) are left out
    assert all("_" not in s and " " not in s for s in wn.synonyms("movie"))


def test_synset_read_by_offset_matches_the_data_line(wn):
    # data.noun line 06613686 lists: movie film picture moving_picture ... pic flick
    line = next(ln for ln in open(wn.path / "data.noun", encoding="latin-1") if ln.startswith("06613686 "))
    f = line.split()
    expected = [f[4 + 2 * i].lower() for i in range(int(f[3], 16))]
    assert list(wn._synset_words("n", 6613686)) == expected


def test_morphy_inflections(wn):
    assert wn.lemmas("movies", "n") == ["movie"]
    assert "run" in wn.lemmas("ran", "v")  # from verb.exc
    assert "funny" in wn.lemmas("funniest", "a")
    assert "film" in wn.synonyms("movies")


def test_parts_of_speech(wn):
    counts = wn.pos_counts("good")
    assert set(counts) == {"n", "a", "r"}
    assert wn.dominant_pos("good") == ("a",)      # 14 tagged adjective senses vs 3 noun, 2 adverb
    assert wn.dominant_pos("movie") == ("n",)
    assert wn.dominant_pos("the") == ()
    # the POS constraint: adjective synonyms of "good" exclude the noun "commodity"
    assert "commodity" in wn.synonyms("good")
    assert "commodity" not in wn.synonyms("good", wn.dominant_pos("good"))


def test_bad_pos(wn):
    with pytest.raises(InvalidInputError, match="'x'"):
        wn.synonyms("good", "x")


def test_missing_database_names_the_install_command(tmp_path, monkeypatch):
    with pytest.raises(MissingDependencyError, match="apt-get install"):
        find_wordnet_dir(tmp_path)
    (tmp_path / "index.noun").write_text("")
    with pytest.raises(MissingDependencyError, match="data.noun"):
        WordNet(tmp_path)


def test_env_var_is_honoured(monkeypatch, wn):
    monkeypatch.setenv("TRUSTEQ_WORDNET_DIR", str(wn.path))
    assert find_wordnet_dir() == wn.path


def test_word_recipe_reinflects_regular_plurals_and_keeps_case():
    from mlflow_trusteq.attack.recipes import WordSwapRecipe, _pluralize

    r = WordSwapRecipe()
    assert "films" in r.candidates("movies") and "film" not in r.candidates("movies")
    assert "Film" in r.candidates("Movie")
    assert r.candidates("the") == [] and not r.eligible("the")
    assert [_pluralize(w) for w in ["film", "box", "comedy", "day"]] == ["films", "boxes", "comedies", "days"]
    assert len(WordSwapRecipe(max_candidates=3).candidates("good")) == 3
