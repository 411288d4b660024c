"""WordNet 3.0 for the word-level attack: a synonym table shipped with the package, or the database files.

The word-level attack needs synonyms offline. By default they come from a compact table built
from WordNet 3.0 and shipped inside the package (``_lexicon/wordnet-3.0.txt.xz``, about 1 MB;
its licence, how it was built and how to rebuild it are in ``_lexicon/``). It holds only what
the attack reads: each lemma's synsets in WordNet's order with its tagged-sense count, the
single-word members of each synset, and the morphological exception lists, so every answer
(:meth:`WordNet.synonyms`, :meth:`WordNet.dominant_pos`, :meth:`WordNet.lemmas`) equals the one
from the full database; ``tests/attack/test_attack_wordnet.py`` holds the two against each other.

The full database files are an option, e.g. for another WordNet version: pass ``path`` or set
``TRUSTEQ_WORDNET_DIR`` (or WordNet's own ``WNSEARCHDIR``/``WNHOME``) to a folder holding
``index.noun``, ``data.noun``, ... for the four parts of speech ``noun``, ``verb``, ``adj``, ``adv``:

- Debian/Ubuntu: ``apt-get install wordnet-base`` puts them under ``/usr/share/wordnet``
  (``--no-install-recommends`` skips the Tk browser that the package recommends);
- elsewhere: the ``dict/`` folder of the Princeton tarball or an nltk ``corpora/wordnet``
  folder that is already on disk.

Format (``man 5 wndb``): an index line is
``lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...``, where
``synset_offset`` is the byte offset of the synset's line in ``data.<pos>``; a data line is
``offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id...] p_cnt ...``. Inflected
forms are reduced to lemmas as WordNet's ``morphy`` does: the exception lists first, then the
suffix-detachment rules, keeping only forms present in the index.

Example
-------
>>> wn = load_wordnet()
>>> "film" in wn.synonyms("movie")
True
>>> wn.dominant_pos("good")
('a',)
"""

from __future__ import annotations

import lzma
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from .._errors import InvalidInputError, MissingDependencyError

__all__ = ["WordNet", "POS", "TABLE_PATH", "find_wordnet_dir", "load_wordnet", "INSTALL_HINT"]

#: WordNet's parts of speech, by the file suffix and by the one-letter code used in the files.
POS: dict[str, str] = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

#: The synonym table built from WordNet 3.0 and shipped with the package (see ``_lexicon/BUILD.md``).
TABLE_PATH = Path(__file__).resolve().parent / "_lexicon" / "wordnet-3.0.txt.xz"

INSTALL_HINT = (
    "apt-get install -y --no-install-recommends wordnet-base   (Debian/Ubuntu; files land in "
    "/usr/share/wordnet), or set TRUSTEQ_WORDNET_DIR to a folder holding WordNet 3.x's "
    "index.noun, data.noun, ... files"
)

_SEARCH_DIRS = (
    "/usr/share/wordnet",
    "/usr/local/share/wordnet",
    "/usr/share/wordnet/dict",
    "/usr/local/WordNet-3.0/dict",
    "/opt/homebrew/share/wordnet/dict",
    "/usr/share/nltk_data/corpora/wordnet",
    "/usr/local/share/nltk_data/corpora/wordnet",
    "~/nltk_data/corpora/wordnet",
)

_REQUIRED = tuple(f"{kind}.{pos}" for pos in POS.values() for kind in ("index", "data"))

# WordNet's morphy detachment rules (morph.c), by part of speech.
_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "n": (("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
          ("shes", "sh"), ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
          ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}

_SINGLE_WORD = re.compile(r"^[a-z]+(?:[-'][a-z]+)*$")
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


def _is_wordnet_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in _REQUIRED)


def _explicit_dir() -> str | None:
    """The database folder named by the environment, if any (``TRUSTEQ_WORDNET_DIR``, ``WNSEARCHDIR``, ``WNHOME``)."""
    for var in ("TRUSTEQ_WORDNET_DIR", "WNSEARCHDIR"):
        if os.environ.get(var):
            return os.environ[var]
    if os.environ.get("WNHOME"):
        return os.path.join(os.environ["WNHOME"], "dict")
    return None


def find_wordnet_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding WordNet's database files.

    Looks, in order, at ``path``, ``$TRUSTEQ_WORDNET_DIR``, ``$WNSEARCHDIR``, ``$WNHOME/dict``
    and the usual install locations. Raises :class:`MissingDependencyError` with the install
    command when none holds ``index.{noun,verb,adj,adv}`` and ``data.{...}``.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not _is_wordnet_dir(p):
            missing = [name for name in _REQUIRED if not (p / name).is_file()]
            raise MissingDependencyError(f"{str(p)!r} is not a WordNet database folder (missing {missing}); "
                                         f"install WordNet with: {INSTALL_HINT}")
        return p
    explicit = _explicit_dir()
    candidates = ([explicit] if explicit else []) + list(_SEARCH_DIRS)
    for c in candidates:
        p = Path(c).expanduser()
        if _is_wordnet_dir(p):
            return p
    raise MissingDependencyError(
        f"no WordNet database files in any of {candidates} (the word-level attack does not need them: "
        f"it uses the table shipped with the package). Install them with: {INSTALL_HINT}"
    )


def _read_version(path: Path) -> str:
    """The version named in the licence header of ``data.noun`` (e.g. ``'WordNet 3.0'``)."""
    with open(path / "data.noun", "rb") as fh:
        for _ in range(40):
            line = fh.readline().decode("latin-1")
            if not line.startswith("  "):
                break
            m = re.search(r"WordNet (\d+(?:\.\d+)*)", line)
            if m:
                return f"WordNet {m.group(1)}"
    return "WordNet (unknown version)"


class _Files:
    """WordNet's database files in a folder, read lazily (index once per part of speech, synsets by offset)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.version = _read_version(path)
        self.source = f"{self.version} database files at {path}"
        self._index: dict[str, dict[str, tuple[int, tuple[int, ...]]]] = {}
        self._exc: dict[str, dict[str, tuple[str, ...]]] = {}
        self._synset_cache: dict[tuple[str, int], tuple[str, ...]] = {}

    def index(self, pos: str) -> dict[str, tuple[int, tuple[int, ...]]]:
        """``lemma -> (tagsense_cnt, synset offsets)`` of ``index.<pos>``."""
        if pos not in self._index:
            table: dict[str, tuple[int, tuple[int, ...]]] = {}
            with open(self.path / f"index.{POS[pos]}", encoding="latin-1") as fh:
                for line in fh:
                    if line.startswith("  "):
                        continue
                    f = line.split()
                    synset_cnt = int(f[2])
                    p_cnt = int(f[3])
                    tagsense_cnt = int(f[5 + p_cnt])
                    offsets = tuple(int(x) for x in f[6 + p_cnt: 6 + p_cnt + synset_cnt])
                    table[f[0]] = (tagsense_cnt, offsets)
            self._index[pos] = table
        return self._index[pos]

    def exceptions(self, pos: str) -> dict[str, tuple[str, ...]]:
        """``inflected form -> base forms`` of ``<pos>.exc`` (empty when the file is absent)."""
        if pos not in self._exc:
            table: dict[str, tuple[str, ...]] = {}
            exc_file = self.path / f"{POS[pos]}.exc"
            if exc_file.is_file():
                with open(exc_file, encoding="latin-1") as fh:
                    for line in fh:
                        f = line.split()
                        if len(f) >= 2:
                            table[f[0]] = tuple(f[1:])
            self._exc[pos] = table
        return self._exc[pos]

    def synset(self, pos: str, offset: int) -> tuple[str, ...]:
        """The members of the synset at byte ``offset`` of ``data.<pos>``, lower-case, markers removed."""
        key = (pos, offset)
        if key not in self._synset_cache:
            with open(self.path / f"data.{POS[pos]}", "rb") as fh:
                fh.seek(offset)
                f = fh.readline().decode("latin-1").split()
            if int(f[0]) != offset:  # pragma: no cover - a corrupt database
                raise MissingDependencyError(f"corrupt WordNet file data.{POS[pos]} at offset {offset}")
            w_cnt = int(f[3], 16)
            words = tuple(_ADJ_MARKER.sub("", f[4 + 2 * i]).lower() for i in range(w_cnt))
            self._synset_cache[key] = words
        return self._synset_cache[key]


class _Table:
    """The synonym table shipped with the package (see ``_lexicon/BUILD.md`` for its format)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index: dict[str, dict[str, tuple[int, tuple[int, ...]]]] = {p: {} for p in POS}
        self._exc: dict[str, dict[str, tuple[str, ...]]] = {p: {} for p in POS}
        self._synsets: dict[str, list[tuple[str, ...]]] = {p: [] for p in POS}
        self.version = "WordNet (unknown version)"
        self._parse(lzma.decompress(path.read_bytes()).decode("utf-8"))
        self.source = f"{self.version} synonym table shipped with mlflow-trusteq ({path.name})"

    def _parse(self, text: str) -> None:
        section: tuple[str, str] | None = None
        for line in text.splitlines():
            if line.startswith("#") or not line:
                continue
            if line.startswith("@"):
                f = line[1:].split(maxsplit=1)
                if f[0] == "version":
                    self.version = f[1]
                elif f[0] in ("synsets", "index", "exc") and f[1] in POS:
                    section = (f[0], f[1])
                else:
                    raise MissingDependencyError(f"corrupt WordNet table {self.path}: unknown line {line!r}")
                continue
            if section is None:
                raise MissingDependencyError(f"corrupt WordNet table {self.path}: data before a section")
            kind, pos = section
            f = line.split(" ")
            if kind == "synsets":
                self._synsets[pos].append(tuple(f))
            elif kind == "index":
                self._index[pos][f[0]] = (int(f[1]), tuple(int(x) for x in f[2:]))
            else:
                self._exc[pos][f[0]] = tuple(f[1:])

    def index(self, pos: str) -> dict[str, tuple[int, tuple[int, ...]]]:
        return self._index[pos]

    def exceptions(self, pos: str) -> dict[str, tuple[str, ...]]:
        return self._exc[pos]

    def synset(self, pos: str, offset: int) -> tuple[str, ...]:
        return self._synsets[pos][offset]


class WordNet:
    """Synonyms and parts of speech from WordNet: the shipped table, or a local database.

    Parameters
    ----------
    path : path-like, optional
        Folder of WordNet's database files. When omitted, the folder named by
        ``TRUSTEQ_WORDNET_DIR`` (or ``WNSEARCHDIR``, ``WNHOME``) is used if set, else the table
        shipped with the package (:data:`TABLE_PATH`). A named folder that is not a WordNet
        database raises :class:`MissingDependencyError` with the install command; there is no
        silent fall-back to the table.

    Notes
    -----
    The table loads in well under a second; database files are parsed lazily, once per part of
    speech (about 0.3 s for nouns), and synsets read on demand by seeking to their byte offset.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        folder = path if path is not None else _explicit_dir()
        self._db: _Files | _Table = _Files(find_wordnet_dir(folder)) if folder is not None else _Table(TABLE_PATH)
        self.path = self._db.path
        self.version = self._db.version

    def __repr__(self) -> str:
        return f"WordNet(path={str(self.path)!r}, version={self.version!r})"

    @property
    def source(self) -> str:
        """Where the words come from, for a result's settings."""
        return self._db.source

    def _load_index(self, pos: str) -> dict[str, tuple[int, tuple[int, ...]]]:
        return self._db.index(pos)

    def _load_exc(self, pos: str) -> dict[str, tuple[str, ...]]:
        return self._db.exceptions(pos)

    def _synset_words(self, pos: str, offset: int) -> tuple[str, ...]:
        return self._db.synset(pos, offset)

    # -- public ------------------------------------------------------------------------------
    def lemmas(self, word: str, pos: str) -> list[str]:
        """Base forms of ``word`` in part of speech ``pos`` (``'n'``, ``'v'``, ``'a'``, ``'r'``), as morphy finds."""
        if pos not in POS:
            raise InvalidInputError(f"Expected `pos` in {sorted(POS)}, got {pos!r}")
        w = word.lower().replace(" ", "_")
        index = self._load_index(pos)
        exc = self._load_exc(pos)
        forms: list[str] = []
        if w in exc:
            forms.extend(exc[w])
        forms.append(w)
        if w not in exc:
            for suffix, ending in _RULES[pos]:
                if w.endswith(suffix) and len(w) > len(suffix):
                    forms.append(w[: len(w) - len(suffix)] + ending)
        seen: list[str] = []
        for f in forms:
            if f in index and f not in seen:
                seen.append(f)
        return seen

    def pos_counts(self, word: str) -> dict[str, int]:
        """Parts of speech in which ``word`` (or a base form of it) appears, with their tagged-sense counts.

        The count is ``tagsense_cnt`` of the index: how many of the lemma's senses were tagged in
        WordNet's semantic concordance, a frequency proxy.
        """
        out: dict[str, int] = {}
        for pos in POS:
            for lemma in self.lemmas(word, pos):
                out[pos] = out.get(pos, 0) + self._load_index(pos)[lemma][0]
        return out

    def dominant_pos(self, word: str) -> tuple[str, ...]:
        """The part(s) of speech with the most tagged senses for ``word`` (all tied ones); empty when unknown."""
        counts = self.pos_counts(word)
        if not counts:
            return ()
        best = max(counts.values())
        return tuple(p for p in POS if p in counts and counts[p] == best)

    def synonyms(self, word: str, pos: str | Iterable[str] | None = None, *,
                 max_n: int | None = None) -> list[str]:
        """Single-word synonyms of ``word``: the other members of its synsets, most frequent senses first.

        Parameters
        ----------
        word : str
            Any form; reduced to lemmas with morphy.
        pos : str or iterable of str, optional
            Parts of speech to draw synsets from (``'n'``, ``'v'``, ``'a'``, ``'r'``); all when None.
        max_n : int, optional
            Keep at most this many (in WordNet's order: senses by frequency, then members).

        Returns
        -------
        list of str
            Lower-case, without multi-word expressions, without ``word`` and its base forms.
        """
        if pos is None:
            pos_list = list(POS)
        elif isinstance(pos, str):
            pos_list = [pos]
        else:
            pos_list = list(pos)
        for p in pos_list:
            if p not in POS:
                raise InvalidInputError(f"Expected `pos` in {sorted(POS)}, got {p!r}")
        w = word.lower()
        exclude = {w}
        out: list[str] = []
        for p in pos_list:
            lemmas = self.lemmas(w, p)
            exclude.update(lemmas)
            index = self._load_index(p)
            for lemma in lemmas:
                for offset in index[lemma][1]:
                    for s in self._synset_words(p, offset):
                        if s not in exclude and s not in out and _SINGLE_WORD.match(s):
                            out.append(s)
        out = [s for s in out if s not in exclude]
        return out[:max_n] if max_n is not None else out


@lru_cache(maxsize=4)
def load_wordnet(path: str | None = None) -> WordNet:
    """A cached :class:`WordNet` for ``path`` (the environment's folder or the shipped table when None)."""
    return WordNet(path)
