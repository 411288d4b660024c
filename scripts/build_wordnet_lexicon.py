"""Build the WordNet synonym table shipped with mlflow-trusteq (``mlflow_trusteq/attack/_lexicon/``).

Usage (from the repository root, with WordNet 3.0's database files installed, e.g. Debian's
``apt-get install -y --no-install-recommends wordnet-base``)::

    python scripts/build_wordnet_lexicon.py [--wordnet-dir /usr/share/wordnet] [--out PATH]

The table keeps exactly what :class:`mlflow_trusteq.attack.wordnet.WordNet` reads, read through
the same file reader the attack uses with ``TRUSTEQ_WORDNET_DIR``, so both give the same answers:

- per part of speech, every index lemma with its tagged-sense count and its synsets in WordNet's
  order (synsets without a single-word member are dropped: they can never give a synonym);
- each kept synset's single-word members (multi-word expressions are never proposed);
- the morphological exception lists (``<pos>.exc``), for morphy.

The output is deterministic (no timestamps; xz preset 9), so a rebuild from the same WordNet
gives the same bytes; ``tests/attack/test_attack_wordnet.py`` checks that where WordNet is
installed. See ``mlflow_trusteq/attack/_lexicon/BUILD.md`` for the format.
"""

from __future__ import annotations

import argparse
import logging
import lzma
from pathlib import Path

from tqdm import tqdm

from mlflow_trusteq.attack.wordnet import _SINGLE_WORD, POS, TABLE_PATH, WordNet

logger = logging.getLogger("build_wordnet_lexicon")

FORMAT = 1


def table_text(wn: WordNet) -> str:
    """The table's text for the database ``wn`` (files), before compression."""
    lines = [f"# mlflow-trusteq WordNet synonym table, format {FORMAT}; built by scripts/build_wordnet_lexicon.py",
             "# from the database files of the version below; licence: LICENSE-WordNet-3.0.txt beside this file",
             f"@version {wn.version}"]
    for pos in POS:
        index = wn._load_index(pos)
        ids: dict[int, int] = {}
        synsets: list[str] = []
        entries: list[str] = []
        for lemma, (tagsense_cnt, offsets) in tqdm(index.items(), desc=f"index.{POS[pos]}", unit="lemma"):
            kept: list[str] = []
            for offset in offsets:
                if offset not in ids:
                    members = [w for w in wn._synset_words(pos, offset) if _SINGLE_WORD.match(w)]
                    ids[offset] = len(synsets) if members else -1
                    if members:
                        synsets.append(" ".join(members))
                if ids[offset] >= 0:
                    kept.append(str(ids[offset]))
            entries.append(" ".join([lemma, str(tagsense_cnt), *kept]))
        exc = [" ".join([form, *bases]) for form, bases in wn._load_exc(pos).items()]
        lines += [f"@synsets {pos}", *synsets, f"@index {pos}", *entries, f"@exc {pos}", *exc]
        logger.info("%s: %d lemmas, %d synsets with a single-word member, %d exceptions",
                    POS[pos], len(entries), len(synsets), len(exc))
    return "\n".join(lines) + "\n"


def build(wordnet_dir: str | None, out: Path) -> Path:
    """Write the compressed table for the database at ``wordnet_dir`` (found automatically when None)."""
    from mlflow_trusteq.attack.wordnet import find_wordnet_dir

    wn = WordNet(find_wordnet_dir(wordnet_dir))
    data = lzma.compress(table_text(wn).encode("utf-8"), format=lzma.FORMAT_XZ, preset=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    logger.info("wrote %s (%.2f MB) from %s", out, len(data) / 1e6, wn.source)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet-dir", default=None, help="folder of WordNet's database files")
    parser.add_argument("--out", type=Path, default=TABLE_PATH, help=f"output file (default {TABLE_PATH})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.wordnet_dir, args.out)


if __name__ == "__main__":
    main()
