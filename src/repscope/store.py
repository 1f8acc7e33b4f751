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
import datetime as _dt
import errno
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np

from .errors import InputShapeError, InputValueError, RepscopeError

__all__ = [
    "ActivationStore",
    "EntryExistsError",
    "EntryNotFoundError",
    "EntryWriter",
    "StoreError",
    "make_key",
]

_MARKER = "repscope_activation_store"
_FORMAT_VERSION = 1
_ENTRIES = "entries"
_STAGING = ".staging"
_DATA = "data"
_INDEX = "token_index"
#: target size of one chunk in bytes (rows are grouped up to about this size)
_CHUNK_BYTES = 8 * 2**20
#: provenance fields the store fills in itself (callers may not override them)
_RESERVED = frozenset({"key", "dtype", "n", "d", "complete", "created", "repscope_version"})
#: provenance fields always present (None when the caller did not give them)
_STANDARD = (
    "model",
    "model_revision",
    "weights_sha256",
    "layer",
    "pooling",
    "dataset",
    "dataset_sha256",
)


class StoreError(RepscopeError):
    """The activation store is missing, malformed, or was used inconsistently."""


class EntryExistsError(StoreError):
    """A complete entry already exists under this key (pass ``overwrite=True``)."""


class EntryNotFoundError(StoreError, KeyError):
    """No complete entry is stored under this key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def make_key(model: str, layer: str, pooling: str) -> str:
    """Conventional store key ``"<model>/<layer>/<pooling>"``.

    The key is only a name; the three parts are also stored as provenance
    attributes, so :meth:`ActivationStore.find` can select by them even when a
    model id itself contains ``/``.
    """
    for what, part in (("model", model), ("layer", layer), ("pooling", pooling)):
        if not isinstance(part, str) or not part:
            raise StoreError(f"store key part {what!r} must be a non-empty string, got {part!r}")
    return f"{model}/{layer}/{pooling}"


def _quote_key(key: str) -> str:
    """Encode a free-form key as one safe directory name (reversible)."""
    if not isinstance(key, str) or not key:
        raise StoreError(f"store keys must be non-empty strings, got {key!r}")
    name = quote(key, safe="")
    if name.startswith("."):  # never produce '.', '..' or hidden names
        name = "%2E" + name[1:]
    if len(name.encode()) > 240:
        raise StoreError(f"store key is too long once encoded ({len(name)} characters): {key!r}")
    return name


def _unquote_key(name: str) -> str:
    return unquote(name)


def _json_ready(value: Any, field: str) -> Any:
    """Convert NumPy scalars and paths to JSON types; reject anything else."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v, field) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreError(f"provenance field {field!r} must be finite, got {value!r}")
        return value
    raise StoreError(
        f"provenance field {field!r} must be JSON-serialisable (str, number, bool, None, "
        f"list or dict), got {type(value).__name__}"
    )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _repscope_version() -> str:
    from . import __version__

    return str(__version__)


def _as_block(block: Any, what: str) -> np.ndarray:
    """A 2-D NumPy view of one chunk (torch tensors are detached and moved to the CPU)."""
    if hasattr(block, "detach") and hasattr(block, "cpu"):
        block = block.detach().cpu().numpy()
    arr = np.asarray(block)
    if arr.ndim == 1:
        raise InputShapeError(
            f"{what} must be 2-D (n, d); got a 1-D array of shape {arr.shape} "
            "(reshape a single feature to (n, 1))"
        )
    if arr.ndim != 2:
        raise InputShapeError(f"{what} must be 2-D (n, d); got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise InputValueError(f"{what} has non-numeric dtype {arr.dtype}")
    return arr


def _chunk_rows_for(d: int, itemsize: int) -> int:
    return max(1, min(65536, _CHUNK_BYTES // max(1, d * itemsize)))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class EntryWriter:
    """Write one entry chunk by chunk; commit atomically.

    Obtain it from :meth:`ActivationStore.writer` and use it as a context
    manager: leaving the ``with`` block normally commits, an exception aborts
    (the staging folder is deleted and the key stays absent).  Rows are
    buffered until a full chunk (``chunk_rows`` rows) is available, so memory
    holds at most one chunk plus the current block.

    Attributes
    ----------
    key : str
    n : int
        Rows appended so far.
    d : int or None
        Width, fixed by the first block.
    """

    def __init__(
        self,
        store: ActivationStore,
        key: str,
        *,
        dtype: Any,
        chunk_rows: int | None,
        overwrite: bool,
        check_finite: bool,
        provenance: dict[str, Any],
    ) -> None:
        self.store = store
        self.key = key
        self._name = _quote_key(key)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "iuf":
            raise StoreError(f"store dtype must be numeric, got {self.dtype}")
        if chunk_rows is not None and (not isinstance(chunk_rows, int) or chunk_rows < 1):
            raise StoreError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
        self._chunk_rows = chunk_rows
        self.overwrite = overwrite
        self.check_finite = check_finite
        self.provenance = provenance
        self.n = 0
        self.d: int | None = None
        self._buf: list[np.ndarray] = []
        self._ibuf: list[np.ndarray] = []
        self._buffered = 0
        self._nblocks = 0
        self._with_index: bool | None = None
        self._data: Any = None
        self._index: Any = None
        self._state = "open"
        store._staging_dir.mkdir(parents=True, exist_ok=True)
        self.staging = store._staging_dir / f"{os.getpid()}-{uuid.uuid4().hex}"
        import zarr

        self._group = zarr.open_group(str(self.staging), mode="w-", zarr_format=3)
        self._group.attrs.update({"key": key, "complete": False})

    # ------------------------------------------------------------ context
    def __enter__(self) -> EntryWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    # ------------------------------------------------------------ writing
    @property
    def chunk_rows(self) -> int | None:
        """Rows per chunk (known once the width is known)."""
        return self._chunk_rows

    def append(self, block: Any, token_index: Any = None) -> None:
        """Append rows ``block`` of shape ``(m, d)`` (NumPy array or torch tensor).

        ``token_index`` (shape ``(m, 2)``, integers) must be given with every
        block or with none of them.
        """
        self._check_open()
        arr = _as_block(block, f"block {self._nblocks} of {self.key!r}")
        self._nblocks += 1
        if self.d is None:
            self.d = int(arr.shape[1])
            if self.d == 0:
                raise InputShapeError(f"{self.key!r}: blocks must have at least one column")
            if self._chunk_rows is None:
                self._chunk_rows = _chunk_rows_for(self.d, self.dtype.itemsize)
        elif arr.shape[1] != self.d:
            raise InputShapeError(
                f"{self.key!r}: block has {arr.shape[1]} columns but earlier blocks had {self.d}"
            )
        with_index = token_index is not None
        if self._with_index is None:
            self._with_index = with_index
        elif self._with_index != with_index:
            raise StoreError(
                f"{self.key!r}: token_index must be given with every block or with none"
            )
        if with_index:
            idx = np.asarray(token_index)
            if idx.ndim != 2 or idx.shape != (arr.shape[0], 2) or idx.dtype.kind not in "iu":
                raise InputShapeError(
                    f"{self.key!r}: token_index must be an integer array of shape "
                    f"({arr.shape[0]}, 2), got {idx.dtype} {idx.shape}"
                )
        if arr.shape[0] == 0:
            return
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught just below
            out = arr.astype(self.dtype, copy=False)
        if self.check_finite and out.dtype.kind == "f" and not np.isfinite(out).all():
            raise InputValueError(f"{self.key!r}: activations contain NaN or Inf")
        if with_index:
            self._ibuf.append(idx.astype(np.int64, copy=False))
        self._buf.append(out)
        self._buffered += out.shape[0]
        self.n += out.shape[0]
        assert self._chunk_rows is not None
        if self._buffered >= self._chunk_rows:
            self._flush(final=False)

    def _create_arrays(self) -> None:
        import zarr

        assert self.d is not None and self._chunk_rows is not None
        self._data = zarr.create_array(
            store=str(self.staging / _DATA),
            shape=(0, self.d),
            chunks=(self._chunk_rows, self.d),
            dtype=self.dtype,
            zarr_format=3,
        )
        if self._with_index:
            self._index = zarr.create_array(
                store=str(self.staging / _INDEX),
                shape=(0, 2),
                chunks=(self._chunk_rows, 2),
                dtype=np.int64,
                zarr_format=3,
            )

    def _flush(self, *, final: bool) -> None:
        if not self._buf:
            return
        if self._data is None:
            self._create_arrays()
        rows = np.concatenate(self._buf, axis=0) if len(self._buf) > 1 else self._buf[0]
        irows = None
        if self._with_index:
            irows = np.concatenate(self._ibuf, axis=0) if len(self._ibuf) > 1 else self._ibuf[0]
        assert self._chunk_rows is not None
        cut = rows.shape[0] if final else (rows.shape[0] // self._chunk_rows) * self._chunk_rows
        if cut:
            self._data.append(rows[:cut], axis=0)
            if irows is not None:
                self._index.append(irows[:cut], axis=0)
        rest = rows[cut:]
        self._buf = [rest] if rest.shape[0] else []
        self._buffered = rest.shape[0]
        if irows is not None:
            irest = irows[cut:]
            self._ibuf = [irest] if irest.shape[0] else []

    # ------------------------------------------------------------ finishing
    def commit(self) -> None:
        """Flush, write the provenance (``complete`` last) and move the entry into place.

        Raises
        ------
        EntryExistsError
            A complete entry with this key appeared and ``overwrite`` is false.
        StoreError
            Nothing was appended.
        """
        self._check_open()
        try:
            self._flush(final=True)
            if self.n == 0 or self.d is None:
                raise StoreError(f"{self.key!r}: no rows were written; refusing an empty entry")
            attrs = dict(self.provenance)
            attrs.update(
                key=self.key,
                dtype=str(self.dtype),
                n=int(self.n),
                d=int(self.d),
                created=_now(),
                repscope_version=_repscope_version(),
                has_token_index=bool(self._with_index),
                chunk_rows=int(self._chunk_rows or 0),
            )
            self._group.attrs.update(attrs)
            self._group.attrs.update({"complete": True})  # the last metadata written
            self.store._install(self.staging, self._name, self.key, overwrite=self.overwrite)
        except BaseException:
            self.abort()
            raise
        self._state = "committed"

    def abort(self) -> None:
        """Discard everything written so far (idempotent)."""
        if self._state == "open":
            self._state = "aborted"
        self._buf, self._ibuf = [], []
        shutil.rmtree(self.staging, ignore_errors=True)

    def _check_open(self) -> None:
        if self._state != "open":
            raise StoreError(f"writer for {self.key!r} is already {self._state}")


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
            import zarr

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
        import zarr

        entry = self._require(key)
        return zarr.open_array(str(entry / _DATA), mode="r", zarr_format=3)

    def load(self, key: str) -> np.ndarray:
        """The stored array as an in-memory NumPy array."""
        return np.asarray(self.open(key)[...])

    def token_index(self, key: str) -> np.ndarray | None:
        """The ``(n, 2)`` ``(sentence, position)`` index of per-token entries, else ``None``."""
        import zarr

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

    def _install(self, staging: Path, name: str, key: str, *, overwrite: bool) -> None:
        """Atomically move a finished staging folder to ``entries/<name>``."""
        target = self._entries_dir / name
        self._entries_dir.mkdir(exist_ok=True)
        trash: Path | None = None
        if target.exists():
            if not overwrite and self._is_complete(target):
                raise EntryExistsError(
                    f"store {self.path} already has a complete entry {key!r}; pass "
                    "overwrite=True to replace it"
                )
            trash = self._staging_dir / f"trash-{uuid.uuid4().hex}"
            os.rename(target, trash)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and self._is_complete(target):
                if trash is not None:  # someone else won the race; keep their entry
                    shutil.rmtree(trash, ignore_errors=True)
                shutil.rmtree(staging, ignore_errors=True)
                if not overwrite:
                    raise EntryExistsError(
                        f"entry {key!r} was written concurrently by another writer"
                    ) from exc
                return
            if trash is not None:  # put the old entry back
                with contextlib.suppress(OSError):
                    os.rename(trash, target)
            raise
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

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
