"""WordNet: the shipped synonym table, and the database files it was built from, held against each other.

The table tests run everywhere. The tests marked ``needs_wordnet_files`` need WordNet's database
files (``apt-get install -y --no-install-recommends wordnet-base``, which ``tests/run.sh``
installs); in CI a skip for a missing dependency fails the run (``tests/_strict_deps.py``).
"""

from __future__ import annotations

import importlib.util
import lzma
import random
from pathlib import Path

import pytest

from mlflow_trusteq._errors import InvalidInputError, MissingDependencyError
from mlflow_trusteq.attack.wordnet import POS, TABLE_PATH, WordNet, find_wordnet_dir, load_wordnet

ROOT = Path(__file__).resolve().parents[2]


def _have_files() -> bool:
    try:
        find_wordnet_dir()
    except MissingDependencyError:
        return False
    return True


needs_wordnet_files = pytest.mark.skipif(
    not _have_files(), reason="WordNet database files not installed: apt-get install -y --no-install-recommends "
                              "wordnet-base")


@pytest.fixture(scope="module")
def table(monkeypatch_module):
    return WordNet()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        for var in ("TRUSTEQ_WORDNET_DIR", "WNSEARCHDIR", "WNHOME"):
            mp.delenv(var, raising=False)
        yield mp


@pytest.fixture(scope="module")
def wn():
    """The full database (files)."""
    return WordNet(find_wordnet_dir())


@pytest.fixture(params=["table", pytest.param("files", marks=needs_wordnet_files)])
def any_wn(request, table):
    return table if request.param == "table" else request.getfixturevalue("wn")


# -- the shipped table ------------------------------------------------------------------------
def test_the_table_is_the_default_and_small(table, monkeypatch):
    assert table.path == TABLE_PATH and table.version == "WordNet 3.0"
    assert "shipped with mlflow-trusteq" in table.source
    assert TABLE_PATH.stat().st_size < 3_000_000
    for name in ("LICENSE-WordNet-3.0.txt", "BUILD.md"):
        assert (TABLE_PATH.parent / name).is_file()
    assert "Princeton University" in (TABLE_PATH.parent / "LICENSE-WordNet-3.0.txt").read_text()
    # the recipe's default reads the table, whatever is installed on the machine
    from mlflow_trusteq.attack._swap_recipes import WordSwapRecipe

    load_wordnet.cache_clear()
    monkeypatch.delenv("TRUSTEQ_WORDNET_DIR", raising=False)
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    monkeypatch.delenv("WNHOME", raising=False)
    try:
        assert WordSwapRecipe().settings()["word_source"] == table.source
    finally:
        load_wordnet.cache_clear()


def test_a_named_folder_that_is_not_wordnet_fails_and_does_not_fall_back(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTEQ_WORDNET_DIR", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="apt-get install -y --no-install-recommends wordnet-base"):
        WordNet()


def test_the_table_entries_read_by_hand():
    # entries read by hand from the decompressed table (format: _lexicon/BUILD.md)
    text = lzma.decompress(TABLE_PATH.read_bytes()).decode("utf-8")
    lines = text.splitlines()
    noun_synsets = lines[lines.index("@synsets n") + 1: lines.index("@index n")]
    movie = next(ln for ln in lines[lines.index("@index n"):lines.index("@exc n")] if ln.startswith("movie "))
    f = movie.split()
    assert f[1] == "1" and len(f) == 3     # index.noun: "movie n 1 4 @ ~ %p - 1 1 06613686" (tagsense_cnt 1)
    assert noun_synsets[int(f[2])].split() == ["movie", "film", "picture", "pic", "flick"]  # single-word members


# -- the same answers from both ---------------------------------------------------------------
def test_sensible_synonyms(any_wn):
    wn = any_wn
    good = wn.synonyms("good")
    assert {"beneficial", "well", "estimable", "respectable"} <= set(good)
    assert "good" not in good
    assert "film" in wn.synonyms("movie")
    assert {"film", "flick", "picture"} <= set(wn.synonyms("movie", "n"))
    assert "boring" in wn.synonyms("dull", "a")
    # multi-word expressions (motion_picture) are left out
    assert all("_" not in s and " " not in s for s in wn.synonyms("movie"))


@needs_wordnet_files
def test_synset_read_by_offset_matches_the_data_line(wn):
    # data.noun line 06613686 lists: movie film picture moving_picture ... pic flick
    line = next(ln for ln in open(wn.path / "data.noun", encoding="latin-1") if ln.startswith("06613686 "))
    f = line.split()
    expected = [f[4 + 2 * i].lower() for i in range(int(f[3], 16))]
    assert list(wn._synset_words("n", 6613686)) == expected


def test_morphy_inflections(any_wn):
    wn = any_wn
    assert wn.lemmas("movies", "n") == ["movie"]
    assert "run" in wn.lemmas("ran", "v")  # from verb.exc
    assert "funny" in wn.lemmas("funniest", "a")
    assert "film" in wn.synonyms("movies")


def test_parts_of_speech(any_wn):
    wn = any_wn
    counts = wn.pos_counts("good")
    assert set(counts) == {"n", "a", "r"}
    assert wn.dominant_pos("good") == ("a",)      # 14 tagged adjective senses vs 3 noun, 2 adverb
    assert wn.dominant_pos("movie") == ("n",)
    assert wn.dominant_pos("the") == ()
    # the POS constraint: adjective synonyms of "good" exclude the noun "commodity"
    assert "commodity" in wn.synonyms("good")
    assert "commodity" not in wn.synonyms("good", wn.dominant_pos("good"))


def test_bad_pos(any_wn):
    wn = any_wn
    with pytest.raises(InvalidInputError, match="'x'"):
        wn.synonyms("good", "x")


def test_missing_database_names_the_install_command(tmp_path, monkeypatch):
    with pytest.raises(MissingDependencyError, match="apt-get install"):
        find_wordnet_dir(tmp_path)
    (tmp_path / "index.noun").write_text("")
    with pytest.raises(MissingDependencyError, match="data.noun"):
        WordNet(tmp_path)


@needs_wordnet_files
def test_env_var_is_honoured(monkeypatch, wn):
    monkeypatch.setenv("TRUSTEQ_WORDNET_DIR", str(wn.path))
    assert find_wordnet_dir() == wn.path
    assert WordNet().source == wn.source        # the files, not the table


def test_word_recipe_reinflects_regular_plurals_and_keeps_case():
    from mlflow_trusteq.attack._swap_recipes import WordSwapRecipe, _pluralize

    r = WordSwapRecipe()
    assert "films" in r.candidates("movies") and "film" not in r.candidates("movies")
    assert "Film" in r.candidates("Movie")
    assert r.candidates("the") == [] and not r.eligible("the")
    assert [_pluralize(w) for w in ["film", "box", "comedy", "day"]] == ["films", "boxes", "comedies", "days"]
    assert len(WordSwapRecipe(max_candidates=3).candidates("good")) == 3


def _equal_answers(table: WordNet, wn: WordNet, words) -> list[str]:
    """Words on which the table and the database answer differently (every query the attack makes)."""
    bad = []
    for w in words:
        dom = wn.dominant_pos(w)
        if (table.dominant_pos(w) != dom or table.pos_counts(w) != wn.pos_counts(w)
                or table.synonyms(w, dom or None, max_n=50) != wn.synonyms(w, dom or None, max_n=50)
                or table.synonyms(w) != wn.synonyms(w)
                or any(table.lemmas(w, p) != wn.lemmas(w, p) for p in POS)):
            bad.append(w)
    return bad


def _vocabulary(wn: WordNet) -> list[str]:
    return sorted({w for p in POS for w in (*wn._load_index(p), *wn._load_exc(p))})


@needs_wordnet_files
def test_the_table_answers_as_the_database_on_sst2_words_and_a_sample(table, wn):
    from mlflow_trusteq.attack._words import tokenize
    from mlflow_trusteq.datasets import load_sst2

    words = {t.lower() for s in load_sst2("dev")["sentence"] for t in tokenize(s).tokens if t.strip().isalpha()}
    sample = random.Random(0).sample(_vocabulary(wn), 3000)
    assert len(words) > 3000
    assert _equal_answers(table, wn, sorted(words) + sample) == []


@needs_wordnet_files
def test_rebuilding_the_table_gives_the_shipped_bytes(wn, tmp_path):
    script = ROOT / "scripts" / "build_wordnet_lexicon.py"
    spec = importlib.util.spec_from_file_location("build_wordnet_lexicon", script)
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    out = build.build(str(wn.path), tmp_path / "table.txt.xz")
    assert out.read_bytes() == TABLE_PATH.read_bytes()


@pytest.mark.slow
@needs_wordnet_files
def test_the_table_answers_as_the_database_on_every_wordnet_word(table, wn):
    assert _equal_answers(table, wn, _vocabulary(wn)) == []
