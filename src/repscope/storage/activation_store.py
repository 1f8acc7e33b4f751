"""On-disk activation store: chunked Zarr v3 arrays with provenance.

An :class:`ActivationStore` is a directory holding one 2-D array of shape
``(n, d)`` per *key* (by convention ``"<model>/<layer>/<pooling>"``), written
chunk by chunk while activations are extracted, so memory stays bounded by one
chunk per open writer whatever ``n`` is.  Reads are lazy: :meth:`ActivationStore.open`
returns the :class:`zarr.Array`, which reads chunks only when sliced;
:meth:`ActivationStore.load` materialises a NumPy array.

Layout (a Zarr v3 hierarchy plus a private staging folder)::

    STORE/zarr.json                     root group, attrs {"repscope_activation_store": 1}
    STORE/entries/zarr.json             group of committed entries
    STORE/entries/<quoted key>/         one group per entry; attrs = provenance
        data/                           the (n, d) array
        token_index/                    optional (n, 2) int64 (sentence, position) rows
    STORE/.staging/<pid>-<uuid>/        entries being written (not part of the hierarchy)

Atomicity
---------
A write goes to a staging folder; the provenance attributes, including
``"complete": true``, are written last, and only then is the folder renamed
into ``entries/`` (a single atomic ``rename`` on POSIX file systems).  An
interrupted write (exception, ``kill``, power loss) therefore never leaves an
entry that looks complete: the key is simply absent, and the abandoned staging
folder is removed by :meth:`ActivationStore.cleanup`.

Provenance
----------
Every entry records ``key``, ``model``, ``model_revision``, ``weights_sha256``,
``layer``, ``pooling``, ``dataset``, ``dataset_sha256``, ``dtype``, ``n``, ``d``,
``repscope_version``, ``created`` (UTC, ISO 8601) and ``complete``, plus any
JSON-serialisable extra fields the caller passes (e.g. extraction options).
"""


from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.optional import require
from repscope.storage.entry_writer import (
    _DATA,
    _ENTRIES,
    _FORMAT_VERSION,
    _INDEX,
    _MARKER,
    _RESERVED,
    _STAGING,
    _STANDARD,
    EntryExistsError,
    EntryNotFoundError,
    EntryWriter,
    StoreError,
    _json_ready,
    _pid_alive,
    _quote_key,
    _unquote_key,
    make_key,
    provenance_difference,
    same_content,
)

__all__ = [
    "ActivationStore",
    "EntryExistsError",
    "EntryNotFoundError",
    "EntryWriter",
    "StoreError",
    "make_key",
]


class ActivationStore:
    """A directory of chunked activation arrays with provenance (Zarr v3).

    Parameters
    ----------
    path : str or os.PathLike
        The store directory.  Created (with parents) in mode ``"a"`` when
        missing; an existing directory must be an activation store or empty.
    mode : {"a", "r"}
        ``"a"``: read and write; ``"r"``: read only (the store must exist).

    Examples
    --------
    >>> store = ActivationStore("acts.zarr")                      # doctest: +SKIP
    >>> store.write("mlp/fc1/flatten", X, model="mlp", layer="fc1",
    ...             pooling="flatten", dataset="digits")          # doctest: +SKIP
    >>> store.open("mlp/fc1/flatten")[:10]   # lazy: reads one chunk  # doctest: +SKIP
    >>> store.provenance("mlp/fc1/flatten")["n"]                  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "a") -> None:
        if mode not in ("a", "r"):
            raise StoreError(f"mode must be 'a' or 'r', got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        root_meta = self.path / "zarr.json"
        if root_meta.is_file():
            try:
                meta = json.loads(root_meta.read_text())
            except (OSError, ValueError) as exc:
                raise StoreError(f"{self.path} has an unreadable zarr.json: {exc}") from exc
            if meta.get("attributes", {}).get(_MARKER) is None:
                raise StoreError(f"{self.path} is a Zarr hierarchy but not a repscope store")
        elif mode == "r":
            raise StoreError(f"no activation store at {self.path}")
        else:
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise StoreError(
                    f"{self.path} exists and is not an activation store; choose a new or "
                    "empty directory"
                )
            zarr = require("zarr", purpose="the activation store")
            root = zarr.open_group(str(self.path), mode="a", zarr_format=3)
            root.attrs.update({_MARKER: _FORMAT_VERSION})
            root.require_group(_ENTRIES)

    def __repr__(self) -> str:
        return f"ActivationStore({str(self.path)!r}, {len(self)} entries)"

    # ------------------------------------------------------------ paths
    @property
    def _entries_dir(self) -> Path:
        return self.path / _ENTRIES

    @property
    def _staging_dir(self) -> Path:
        return self.path / _STAGING

    def _entry_dir(self, key: str) -> Path:
        return self._entries_dir / _quote_key(key)

    # ------------------------------------------------------------ queries
    def keys(self) -> list[str]:
        """Sorted keys of all complete entries."""
        if not self._entries_dir.is_dir():
            return []
        out = []
        for child in self._entries_dir.iterdir():
            if child.is_dir() and self._is_complete(child):
                out.append(_unquote_key(child.name))
        return sorted(out)

    def has(self, key: str) -> bool:
        """Whether a complete entry is stored under ``key``."""
        return self._is_complete(self._entry_dir(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(key) and self.has(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    @staticmethod
    def _read_attrs(entry: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads((entry / "zarr.json").read_text())
        except (OSError, ValueError):
            return None
        attrs = meta.get("attributes")
        return attrs if isinstance(attrs, dict) else None

    def _is_complete(self, entry: Path) -> bool:
        attrs = self._read_attrs(entry)
        return bool(attrs and attrs.get("complete") is True and (entry / _DATA).is_dir())

    def _require(self, key: str) -> Path:
        entry = self._entry_dir(key)
        if not self._is_complete(entry):
            import difflib

            close = difflib.get_close_matches(key, self.keys(), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise EntryNotFoundError(f"no complete entry {key!r} in store {self.path}{hint}")
        return entry

    def provenance(self, key: str) -> dict[str, Any]:
        """The provenance attributes of ``key`` (a fresh dict)."""
        attrs = self._read_attrs(self._require(key))
        assert attrs is not None
        return dict(attrs)

    def find(self, **match: Any) -> list[str]:
        """Keys whose provenance has every given field equal to the given value.

        Example: ``store.find(model="all-MiniLM-L6-v2", pooling="mean")``.
        """
        out = []
        for key in self.keys():
            prov = self.provenance(key)
            if all(prov.get(k) == v for k, v in match.items()):
                out.append(key)
        return out

    # ------------------------------------------------------------ reading
    def open(self, key: str) -> Any:
        """The stored ``(n, d)`` array as a read-only, lazily read :class:`zarr.Array`."""
        zarr = require("zarr", purpose="the activation store")
        entry = self._require(key)
        return zarr.open_array(str(entry / _DATA), mode="r", zarr_format=3)

    def load(self, key: str) -> np.ndarray:
        """The stored array as an in-memory NumPy array."""
        return np.asarray(self.open(key)[...])

    def token_index(self, key: str) -> np.ndarray | None:
        """The ``(n, 2)`` ``(sentence, position)`` index of per-token entries, else ``None``."""
        zarr = require("zarr", purpose="the activation store")
        entry = self._require(key)
        if not (entry / _INDEX).is_dir():
            return None
        return np.asarray(zarr.open_array(str(entry / _INDEX), mode="r", zarr_format=3)[...])

    # ------------------------------------------------------------ writing
    def _check_writable(self) -> None:
        if self.mode != "a":
            raise StoreError(f"store {self.path} was opened read-only")

    def _provenance_for(self, key: str, provenance: Mapping[str, Any]) -> dict[str, Any]:
        bad = sorted(set(provenance) & _RESERVED)
        if bad:
            raise StoreError(
                f"provenance fields {', '.join(bad)} are filled in by the store; do not pass them"
            )
        out: dict[str, Any] = {k: None for k in _STANDARD}
        for k, v in provenance.items():
            out[str(k)] = _json_ready(v, str(k))
        return out

    def writer(
        self,
        key: str,
        *,
        dtype: Any = np.float32,
        chunk_rows: int | None = None,
        overwrite: bool = False,
        check_finite: bool = True,
        **provenance: Any,
    ) -> EntryWriter:
        """Open a chunked writer for ``key`` (use it as a context manager).

        Parameters
        ----------
        key : str
            Entry name, conventionally :func:`make_key` ``(model, layer, pooling)``.
        dtype : numpy dtype
            Storage dtype (default float32); blocks are cast to it.
        chunk_rows : int, optional
            Rows per chunk; default: about 8 MiB per chunk.
        overwrite : bool
            Replace an existing complete entry at commit time.  Without it an
            existing key raises :class:`EntryExistsError` (checked now and at commit).
        check_finite : bool
            Reject blocks holding NaN or Inf.
        **provenance
            JSON-serialisable attributes (``model``, ``layer``, ``pooling``,
            ``dataset``, ``dataset_sha256``, ``weights_sha256``, ...).
        """
        self._check_writable()
        _quote_key(key)
        if not overwrite and self.has(key):
            raise EntryExistsError(
                f"store {self.path} already has a complete entry {key!r}; pass overwrite=True "
                "to replace it"
            )
        return EntryWriter(
            self,
            key,
            dtype=dtype,
            chunk_rows=chunk_rows,
            overwrite=overwrite,
            check_finite=check_finite,
            provenance=self._provenance_for(key, provenance),
        )

    def write(
        self,
        key: str,
        data: Any,
        *,
        token_index: Any = None,
        dtype: Any = np.float32,
        chunk_rows: int | None = None,
        overwrite: bool = False,
        check_finite: bool = True,
        **provenance: Any,
    ) -> Any:
        """Write a whole entry from an array or an iterable of ``(m, d)`` blocks.

        ``data`` may be a 2-D array/tensor or any iterable of 2-D blocks (for
        example a generator yielding one batch of activations at a time: the
        blocks are written as they arrive).  With blocks, ``token_index`` must
        be an iterable of matching ``(m, 2)`` blocks.  If iterating raises, the
        entry is not created.  Returns the lazily read stored array.
        """
        with self.writer(
            key,
            dtype=dtype,
            chunk_rows=chunk_rows,
            overwrite=overwrite,
            check_finite=check_finite,
            **provenance,
        ) as w:
            if isinstance(data, np.ndarray) or (hasattr(data, "detach") and hasattr(data, "cpu")):
                w.append(data, token_index)
            elif isinstance(data, Iterable):
                if token_index is None:
                    for block in data:
                        w.append(block)
                else:
                    sentinel = object()
                    for block, idx in _zip_strict(data, token_index, sentinel, key):
                        w.append(block, idx)
            else:
                w.append(data, token_index)
        return self.open(key)

    def _install(self, staging: Path, name: str, key: str, *, overwrite: bool) -> bool:
        """Atomically move a finished staging folder to ``entries/<name>``.

        Returns ``False`` for a cache hit: without ``overwrite``, a complete entry
        already there with the same identifying provenance
        (:func:`~repscope.storage.entry_writer.same_content`) is kept and the new
        copy discarded.  Another complete entry raises :class:`EntryExistsError`.
        """
        target = self._entries_dir / name
        self._entries_dir.mkdir(exist_ok=True)
        trash: Path | None = None
        if target.exists():
            if not overwrite and self._is_complete(target):
                if self._keeps(target, staging, key):
                    return False
            trash = self._staging_dir / f"trash-{uuid.uuid4().hex}"
            os.rename(target, trash)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and self._is_complete(target):
                if trash is not None:  # someone else won the race; keep their entry
                    shutil.rmtree(trash, ignore_errors=True)
                if not overwrite:
                    self._keeps(target, staging, key, concurrent=True)
                    return False
                shutil.rmtree(staging, ignore_errors=True)
                return True
            if trash is not None:  # put the old entry back
                with contextlib.suppress(OSError):
                    os.rename(trash, target)
            raise
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return True

    def _keeps(self, target: Path, staging: Path, key: str, *, concurrent: bool = False
               ) -> bool:
        """Keep the complete entry at ``target`` if it holds the same content (a cache hit).

        Discards ``staging`` and returns ``True``; otherwise discards it too and raises
        :class:`EntryExistsError` naming the provenance that differs.
        """
        old, new = self._read_attrs(target) or {}, self._read_attrs(staging) or {}
        shutil.rmtree(staging, ignore_errors=True)
        if same_content(old, new):
            return True
        how = "was written concurrently by another writer" if concurrent else "already exists"
        raise EntryExistsError(
            f"store {self.path}: a complete entry {key!r} {how} with other provenance "
            f"({provenance_difference(old, new)}); pass overwrite=True to replace it"
        )

    def delete(self, key: str) -> None:
        """Remove the entry ``key`` (atomically hidden first, then deleted)."""
        self._check_writable()
        entry = self._require(key)
        self._staging_dir.mkdir(exist_ok=True)
        trash = self._staging_dir / f"trash-{uuid.uuid4().hex}"
        os.rename(entry, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def cleanup(self, *, everything: bool = False) -> list[str]:
        """Delete abandoned staging folders; return their names.

        A staging folder is abandoned when the process that created it (its
        name starts with the writer's pid) no longer runs on this machine.
        With ``everything=True`` all staging folders are deleted, which is
        only safe when no writer is running on any machine.
        """
        self._check_writable()
        removed: list[str] = []
        if not self._staging_dir.is_dir():
            return removed
        for child in self._staging_dir.iterdir():
            pid_part = child.name.split("-", 1)[0]
            stale = everything or child.name.startswith("trash-")
            if not stale and pid_part.isdigit():
                stale = not _pid_alive(int(pid_part))
            if stale:
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child.name)
        return sorted(removed)

    def staging_entries(self) -> list[str]:
        """Names of staging folders present (writes in progress or abandoned)."""
        if not self._staging_dir.is_dir():
            return []
        return sorted(p.name for p in self._staging_dir.iterdir())


def _zip_strict(a: Iterable[Any], b: Iterable[Any], sentinel: object, key: str) -> Iterator[Any]:
    ia, ib = iter(a), iter(b)
    while True:
        x = next(ia, sentinel)
        y = next(ib, sentinel)
        if x is sentinel and y is sentinel:
            return
        if x is sentinel or y is sentinel:
            raise StoreError(f"{key!r}: data and token_index yield different numbers of blocks")
        yield x, y
