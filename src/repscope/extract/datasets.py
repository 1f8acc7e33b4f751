"""Small datasets bundled with repscope."""

from __future__ import annotations

from importlib import resources

__all__ = ["builtin_sentences"]


def builtin_sentences() -> list[str]:
    """About 300 varied English sentences bundled with repscope (one per input).

    Everyday statements, questions, instructions, science facts, news-style and
    longer multi-clause sentences, written for repscope.  Used by the demo to
    compare sentence encoders layer by layer.  Blank lines are skipped; the
    order is fixed, so the list (and its :func:`~repscope.extract.texts_hash`)
    is stable.
    """
    text = resources.files("repscope").joinpath("data", "sentences.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
