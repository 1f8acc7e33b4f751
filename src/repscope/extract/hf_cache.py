"""Models in the local Hugging Face cache, found without network access.

``huggingface_hub`` keeps downloaded models in one folder (the *hub cache*)::

    <cache>/models--<org>--<name>/refs/main            the commit of branch main
    <cache>/models--<org>--<name>/snapshots/<commit>/  the model folder at that commit

This module reads that layout directly (nothing is imported from, or asked of,
the Hub): :func:`cached_models` lists the model ids whose snapshot is a model
folder (it has ``config.json``), :func:`cached_snapshot` finds one.  The cache
is where ``huggingface_hub`` puts it: ``$HF_HUB_CACHE``, else
``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else
``~/.cache/huggingface/hub``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

__all__ = ["CachedModel", "cached_models", "cached_snapshot", "hub_cache_dir"]

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REVISION = re.compile(r"^[A-Za-z0-9._/-]+$")


class CachedModel(NamedTuple):
    """A model folder in the hub cache: its ``repo_id``, ``folder`` and ``commit``."""

    repo_id: str
    folder: Path
    commit: str


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder (it may not exist)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "huggingface" / "hub"


def _repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def _snapshot(repo: Path, revision: str) -> tuple[Path, str] | None:
    """The snapshot of ``revision`` (a branch or tag in ``refs/``, or a commit) in ``repo``."""
    snapshots = repo / "snapshots"
    if not _REVISION.match(revision) or ".." in revision.split("/"):
        return None
    commit = None
    ref = repo / "refs" / revision
    if ref.is_file():
        try:
            commit = ref.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            commit = None
    elif _COMMIT.match(revision):
        commit = revision
    elif revision == "main" and snapshots.is_dir():  # fetched at a commit: one snapshot
        only = [p for p in snapshots.iterdir() if p.is_dir()]
        if len(only) == 1:
            commit = only[0].name
    if not commit or not _COMMIT.match(commit):
        return None
    folder = snapshots / commit
    return (folder, commit) if (folder / "config.json").is_file() else None


def cached_snapshot(repo_id: str, revision: str = "main",
                    cache: str | os.PathLike[str] | None = None) -> CachedModel | None:
    """The model folder of ``repo_id`` at ``revision`` in the hub cache, or ``None``.

    Parameters
    ----------
    repo_id : ``"org/name"`` (or ``"name"``), as on the Hub; an exact match is
        preferred, else one that differs only in case.
    revision : a branch or tag recorded in the cache (``"main"``), or a commit hash.
    cache : the hub cache folder (default :func:`hub_cache_dir`).
    """
    root = Path(cache) if cache is not None else hub_cache_dir()
    if not repo_id or not root.is_dir():
        return None
    repo = _repo_folder(root, repo_id)
    if not repo.is_dir():
        wanted = repo.name.lower()
        same = [p for p in root.iterdir() if p.name.lower() == wanted and p.is_dir()]
        if len(same) != 1:
            return None
        repo = same[0]
    found = _snapshot(repo, revision)
    if found is None:
        return None
    return CachedModel(repo.name[len("models--"):].replace("--", "/"), *found)


def cached_models(cache: str | os.PathLike[str] | None = None) -> list[str]:
    """Ids of the models in the hub cache whose ``main`` snapshot is a model folder, sorted."""
    root = Path(cache) if cache is not None else hub_cache_dir()
    if not root.is_dir():
        return []
    out = []
    for repo in root.iterdir():
        if repo.name.startswith("models--") and repo.is_dir() and _snapshot(repo, "main"):
            out.append(repo.name[len("models--"):].replace("--", "/"))
    return sorted(out, key=str.lower)
