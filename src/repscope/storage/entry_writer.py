"""Writing one activation-store entry: :class:`EntryWriter`, keys and store errors.

A write goes to a staging folder; the provenance attributes, including
``"complete": true``, are written last, and only then is the folder renamed
into ``entries/`` (one atomic ``rename`` on POSIX file systems), so an
interrupted write never leaves an entry that looks complete.  The store itself
is :class:`repscope.storage.activation_store.ActivationStore`.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import numpy as np

from repscope.core.errors import InputShapeError, InputValueError, RepscopeError
from repscope.core.optional import require

if TYPE_CHECKING:  # the store creates writers; a writer only calls back into it
    from repscope.storage.activation_store import ActivationStore

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


#: provenance that records when and how an entry was written, not what it holds
_BOOKKEEPING = frozenset({"created", "repscope_version", "chunk_rows", "complete"})
#: provenance without which two entries cannot be known to hold the same activations
_IDENTIFYING = ("weights_sha256", "dataset_sha256")


def same_content(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two entries' provenance shows they hold the same activations.

    True when both record the weights and data hashes and every field other
    than the bookkeeping (``created``, ``repscope_version``, ``chunk_rows``) is
    equal: model, layer, pooling, dtype, shape, options, extractor version and
    any other field the writer gave.  Without both hashes nothing identifies
    the content, so two such entries are never the same.
    """
    if any(old.get(f) is None or new.get(f) is None for f in _IDENTIFYING):
        return False
    fields = (set(old) | set(new)) - _BOOKKEEPING
    return all(old.get(f) == new.get(f) for f in fields)


def provenance_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The fields that differ, ``"field: stored X, now Y"`` (for error messages)."""
    fields = sorted((set(old) | set(new)) - _BOOKKEEPING)
    diffs = [f"{f}: stored {old.get(f)!r}, now {new.get(f)!r}" for f in fields
             if old.get(f) != new.get(f)]
    missing = [f for f in _IDENTIFYING if old.get(f) is None or new.get(f) is None]
    if missing and not diffs:
        return f"no {' or '.join(missing)} recorded to show they are the same"
    return "; ".join(diffs[:4]) + ("; …" if len(diffs) > 4 else "")


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
    from repscope.core.version import __version__

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
    reused : bool
        After :meth:`commit`: an identical entry was already there and was kept
        (a cache hit), this writer's copy discarded.
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
        self.reused = False
        store._staging_dir.mkdir(parents=True, exist_ok=True)
        self.staging = store._staging_dir / f"{os.getpid()}-{uuid.uuid4().hex}"
        zarr = require("zarr", purpose="the activation store")
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
        zarr = require("zarr", purpose="the activation store")
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

        If a complete entry with this key appeared meanwhile (another writer) and
        ``overwrite`` is false, it is kept when it holds the same content
        (:func:`same_content`; ``reused`` becomes true, a cache hit).

        Raises
        ------
        EntryExistsError
            A complete entry with this key but other provenance appeared and
            ``overwrite`` is false.
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
            installed = self.store._install(self.staging, self._name, self.key,
                                            overwrite=self.overwrite)
        except BaseException:
            self.abort()
            raise
        self.reused = not installed
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
