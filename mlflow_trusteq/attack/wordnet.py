"""A small reader of the WordNet 3.0 database files, with no nltk and nothing downloaded.

The word-level attack needs synonyms offline. WordNet's database ships as plain text files
(``index.noun``, ``data.noun``, ``noun.exc``, ... for the four parts of speech ``noun``,
``verb``, ``adj``, ``adv``) in operating-system packages:

- Debian/Ubuntu: ``apt-get install wordnet-base`` puts them under ``/usr/share/wordnet``
  (``--no-install-recommends`` skips the Tk browser that the package recommends);
- elsewhere: point ``TRUSTEQ_WORDNET_DIR`` (or WordNet's own ``WNSEARCHDIR``) at any folder that
  holds those files, e.g. the ``dict/`` folder of the Princeton tarball or an nltk
  ``corpora/wordnet`` folder that is already on disk.

Format (``man 5 wndb``): an index line is
``lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...``, where
``synset_offset`` is the byte offset of the synset's line in ``data.<pos>``; a data line is
``offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id...] p_cnt ...``. Inflected
forms are reduced to lemmas as WordNet's ``morphy`` does: the exception lists first, then the
suffix-detachment rules, keeping only forms present in the index.

Example
-------
>>> wn = WordNet()                                   # doctest: +SKIP
>>> "film" in wn.synonyms("movie")                   # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from .._errors import InvalidInputError, MissingDependencyError

__all__ = ["WordNet", "POS", "find_wordnet_dir", "load_wordnet", "INSTALL_HINT"]

#: WordNet's parts of speech, by the file suffix and by the one-letter code used in the files.
POS: dict[str, str] = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

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
    candidates: list[str] = []
    for var in ("TRUSTEQ_WORDNET_DIR", "WNSEARCHDIR"):
        if os.environ.get(var):
            candidates.append(os.environ[var])
    if os.environ.get("WNHOME"):
        candidates.append(os.path.join(os.environ["WNHOME"], "dict"))
    candidates.extend(_SEARCH_DIRS)
    for c in candidates:
        p = Path(c).expanduser()
        if _is_wordnet_dir(p):
            return p
    raise MissingDependencyError(
        f"the word-level attack needs the WordNet database files, found in none of {candidates}. "
        f"Install them with: {INSTALL_HINT}"
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


class WordNet:
    """Synonyms and parts of speech from a local WordNet database.

    Parameters
    ----------
    path : path-like, optional
        Folder of the database files; found with :func:`find_wordnet_dir` when omitted.

    Notes
    -----
    Index files are parsed lazily, once per part of speech (about 0.3 s for nouns); synsets are
    read on demand by seeking to their byte offset in ``data.<pos>``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = find_wordnet_dir(path)
        self.version = _read_version(self.path)
        self._index: dict[str, dict[str, tuple[int, tuple[int, ...]]]] = {}
        self._exc: dict[str, dict[str, tuple[str, ...]]] = {}
        self._synset_cache: dict[tuple[str, int], tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return f"WordNet(path={str(self.path)!r}, version={self.version!r})"

    @property
    def source(self) -> str:
        """Where the words come from, for a result's settings."""
        return f"{self.version} database files at {self.path}"

    # -- raw files ---------------------------------------------------------------------------
    def _load_index(self, pos: str) -> dict[str, tuple[int, tuple[int, ...]]]:
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

    def _load_exc(self, pos: str) -> dict[str, tuple[str, ...]]:
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

    def _synset_words(self, pos: str, offset: int) -> tuple[str, ...]:
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
    """A cached :class:`WordNet` for ``path`` (found automatically when None)."""
    return WordNet(path)
