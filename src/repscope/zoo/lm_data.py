"""Text for the zoo's tiny language models: a corpus split, a shared BPE tokeniser, token ids.

* :func:`text_corpus` loads a corpus of :mod:`repscope.zoo.texts` (or
  ``"generated"``: :func:`generated_corpus`, a small deterministic English-like
  text for tests) and re-raises a missing package with ``make data`` named.
* :func:`split_text` cuts the corpus text by characters: the first
  ``1 − held_out`` share trains, the rest is held out (contexts for comparisons
  and the held-out loss are drawn from it only).
* :func:`train_tokenizer` trains a byte-level BPE tokeniser (the ``tokenizers``
  library) on the training split once and saves it in the zoo folder with its
  SHA-256; every model of a corpus uses the same file, so their vocabularies,
  and hence their label sets, match.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError
from repscope.core.optional import require
from repscope.zoo.sources import DataNotFoundError
from repscope.zoo.texts import CORPORA, Corpus, load_corpus

__all__ = ["HELD_OUT", "TextSplit", "Tokenizer", "encode", "generated_corpus", "split_text",
           "text_corpus", "train_tokenizer"]

#: the share of a corpus's characters held out (the last part of its text)
HELD_OUT = 0.1

_WORDS = {
    "det": ["the", "a", "my", "thy", "this", "that", "our", "no"],
    "noun": ["king", "queen", "lord", "lady", "heart", "sword", "night", "crown", "love",
             "friend", "house", "field", "storm", "ghost", "letter", "fool", "tongue"],
    "verb": ["loves", "fears", "sees", "keeps", "takes", "brings", "finds", "sends",
             "calls", "hears", "serves", "leaves"],
    "adj": ["noble", "gentle", "dark", "true", "false", "old", "young", "sweet", "bitter"],
    "name": ["Hamlet", "Juliet", "Macbeth", "Portia", "Antonio", "Viola", "Lear", "Puck"],
}


def generated_corpus(n_chars: int = 40_000, seed: int = 0) -> Corpus:
    """A deterministic English-like corpus from a small grammar (for tests and the
    ``test`` preset): speaker lines of subject–verb–object sentences."""
    rng = np.random.default_rng(seed)

    def pick(kind: str) -> str:
        words = _WORDS[kind]
        return words[int(rng.integers(len(words)))]

    def phrase() -> str:
        if rng.random() < 0.3:
            return pick("name")
        adj = f"{pick('adj')} " if rng.random() < 0.4 else ""
        return f"{pick('det')} {adj}{pick('noun')}"

    lines: list[str] = []
    size = 0
    while size < n_chars:
        s = f"{phrase()} {pick('verb')} {phrase()}"
        s = s[0].upper() + s[1:] + (", and " + f"{phrase()} {pick('verb')} {phrase()}"
                                    if rng.random() < 0.3 else "") + "."
        line = f"{pick('name').upper()}. {s}"
        lines.append(line)
        size += len(line) + 1
    text = "\n".join(lines)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Corpus("generated", (text,), sha, f"generated (seed {seed}, {n_chars} characters)")


def text_corpus(name: str, *, path: str | Path | None = None) -> Corpus:
    """The corpus ``name`` (one of :data:`~repscope.zoo.texts.CORPORA` or ``"generated"``).

    A corpus whose package is absent raises :class:`DataNotFoundError` naming the
    package, its install command and ``make data``."""
    if name == "generated":
        return generated_corpus()
    if name not in CORPORA:
        raise InvalidParameterError(f"unknown corpus {name!r}; choose one of "
                                    f"{', '.join((*CORPORA, 'generated'))}")
    try:
        return load_corpus(name, path=path)
    except DataNotFoundError as exc:
        raise DataNotFoundError(f"{exc} `make data` puts every package archive of the zoo in "
                                "$REPSCOPE_DATA_DIR.") from exc


@dataclass(frozen=True)
class TextSplit:
    """The training and held-out text of a corpus and the corpus's SHA-256."""

    corpus: str
    sha256: str
    train: str
    held_out: str


def split_text(corpus: Corpus, held_out: float = HELD_OUT) -> TextSplit:
    """Training text = the first ``1 − held_out`` of the characters, held out = the rest
    (cut at a line break, so no line is in both)."""
    if not 0.0 < held_out < 1.0:
        raise InvalidParameterError(f"held_out must be in (0, 1), got {held_out}")
    text = corpus.text
    cut = int(len(text) * (1.0 - held_out))
    nl = text.find("\n", cut)
    cut = nl + 1 if nl >= 0 else cut
    return TextSplit(corpus.name, corpus.sha256, text[:cut], text[cut:])


@dataclass(frozen=True)
class Tokenizer:
    """A trained tokeniser: the ``tokenizers`` object, its file and that file's SHA-256."""

    tokenizer: Any
    path: Path
    sha256: str

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())


def train_tokenizer(split: TextSplit, vocab_size: int, folder: Path) -> Tokenizer:
    """A byte-level BPE tokeniser of ``vocab_size`` tokens trained on ``split.train``,
    saved once as ``folder/tokenizer-<corpus>-v<size>-<data hash>.json`` and read back
    afterwards (so every model of the corpus shares it)."""
    tk = require("tokenizers", purpose="the zoo's language models")
    if vocab_size < 260:
        raise InvalidParameterError(f"vocab_size must be >= 260 (256 bytes and merges), got "
                                    f"{vocab_size}")
    path = Path(folder) / f"tokenizer-{split.corpus}-v{vocab_size}-{split.sha256[:12]}.json"
    if not path.exists():
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size, show_progress=False,
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(split.train.splitlines(keepends=True), trainer=trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tok.save(str(tmp))
        tmp.replace(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Tokenizer(tk.Tokenizer.from_file(str(path)), path, sha)


def encode(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Token ids of ``text`` (int64), encoded line by line (fast, and the same ids
    for a line wherever it occurs)."""
    lines = text.splitlines(keepends=True)
    out = tokenizer.tokenizer.encode_batch(lines) if lines else []
    ids = [np.asarray(e.ids, dtype=np.int64) for e in out]
    return np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
