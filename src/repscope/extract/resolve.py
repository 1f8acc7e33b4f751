"""One way to name a Hugging Face model: a folder, a built-in name, or a cached model id.

::

    from repscope.extract import load_model, extract_hf
    model, tok = load_model("all-MiniLM-L6-v2")              # built in (pip package)
    model, tok = load_model("google-bert/bert-base-uncased")  # from the Hugging Face cache
    model, tok = load_model("path/to/model-folder")           # a local folder

:func:`resolve_model` looks a name up in this order:

1. a local folder holding ``config.json``;
2. a built-in name of :mod:`repscope.extract.pretrained` (any case);
3. a model id in the local Hugging Face cache (:mod:`repscope.extract.hf_cache`),
   at its ``main`` snapshot;
4. a built-in name after an organisation (``"sentence-transformers/all-MiniLM-L6-v2"``).

Nothing is ever downloaded: models load with ``local_files_only=True`` and
``HF_HUB_OFFLINE=1`` even where a network exists.  A name found nowhere raises
:class:`~repscope.extract.pretrained.UnknownModelError` listing the built-in
names and the model ids in the cache.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, NamedTuple

from repscope.extract import pretrained
from repscope.extract.hf_cache import cached_models, cached_snapshot, hub_cache_dir
from repscope.extract.hf_load import load_hf
from repscope.extract.pretrained import UnknownModelError

__all__ = ["ResolvedModel", "available_models", "load_model", "resolve_model"]


class ResolvedModel(NamedTuple):
    """Where a named model is: ``folder``; its ``model_id`` and ``revision`` for provenance;
    ``source``: ``"folder"``, ``"builtin"`` or ``"hf-cache"``."""

    folder: Path
    model_id: str
    revision: str | None
    source: str


def available_models() -> dict[str, list[str]]:
    """What :func:`load_model` can load now: ``{"builtin": [...], "hf_cache": [...]}``."""
    return {"builtin": pretrained.available(), "hf_cache": cached_models()}


def _builtin(name: str) -> ResolvedModel:
    info = pretrained.info(name)
    return ResolvedModel(pretrained.model_path(info.name), info.name,
                         pretrained.revision(info.name), "builtin")


def _not_found(name: str) -> UnknownModelError:
    installed = set(pretrained.available())
    builtin = [f"{k} ({'installed' if k in installed else 'not installed'})"
               for k in pretrained.known()]
    cached = cached_models()
    close = difflib.get_close_matches(name, [*pretrained.known(), *cached], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    in_cache = ", ".join(cached) if cached else "none"
    return UnknownModelError(
        f"unknown model {name!r}{hint} Built-in: {', '.join(builtin)}. In the Hugging Face "
        f"cache ({hub_cache_dir()}): {in_cache}. A local model folder (with config.json) also "
        "works. repscope never downloads: put a model into the cache first, e.g. "
        "`hf download ORG/NAME`"
    )


def resolve_model(name: str | os.PathLike[str]) -> ResolvedModel:
    """Find the local folder of the model ``name`` (see the module docstring for the order).

    Raises
    ------
    UnknownModelError
        Not a folder, a built-in name or a cached model id; the message lists
        what is available.
    ModelNotInstalledError, ModelAssemblyError
        A built-in model whose packages are missing or broken.
    """
    if isinstance(name, os.PathLike) or (isinstance(name, str) and name):
        folder = Path(name).expanduser()
        if (folder / "config.json").is_file():
            return ResolvedModel(folder, folder.name, None, "folder")
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(f"a model is named by a str or a folder path, got {name!r}")
    text = name.strip()
    if text.lower() in {k.lower() for k in pretrained.known()}:
        return _builtin(text)
    snapshot = cached_snapshot(text)
    if snapshot is not None:
        return ResolvedModel(snapshot.folder, snapshot.repo_id, snapshot.commit, "hf-cache")
    try:
        return _builtin(text)
    except UnknownModelError:
        pass
    if Path(text).expanduser().is_dir():  # a folder that is not a model folder
        return ResolvedModel(Path(text).expanduser(), Path(text).name, None, "folder")
    raise _not_found(text)


def load_model(name: str | os.PathLike[str], *, device: Any = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` of a folder, built-in name or cached model id, offline.

    The model is in eval mode and carries ``repscope_model_id`` and
    ``repscope_revision`` (the built-in packages' versions, or the cache's commit),
    which extraction records as provenance.

    Examples
    --------
    >>> model, tok = load_model("all-MiniLM-L6-v2")            # doctest: +SKIP
    >>> repscope.extract.extract_hf(model, tok, ["a sentence"])  # doctest: +SKIP
    """
    found = resolve_model(name)
    model, tokenizer = load_hf(found.folder, device=device)
    model.repscope_model_id = found.model_id
    model.repscope_revision = found.revision
    return model, tokenizer
