"""Shared pieces of the extractors: errors, result mapping, progress, devices, output sinks."""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.core.progress import progress_bar
from repscope.storage.activation_store import ActivationStore
from repscope.storage.entry_writer import EntryExistsError, EntryWriter, make_key

__all__ = [
    "Activations",
    "ExtractionError",
    "UnknownLayerError",
    "close_matches_hint",
    "progress_bar",
]


class UnknownLayerError(RepscopeError, KeyError):
    """A requested layer name does not exist in the model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ExtractionError(RepscopeError):
    """Extraction failed: a layer was not run, ran twice, or gave an unusable output."""


def close_matches_hint(name: str, candidates: Sequence[str], n: int = 5) -> str:
    """``"; did you mean 'a', 'b'?"`` for the candidates closest to ``name`` (or "")."""
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    if not close:
        low = name.lower()
        close = [c for c in candidates if low and low in c.lower()][:n]
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


class Activations(Mapping[str, Any]):
    """Result of an extraction: layer name -> ``(n, d)`` activations.

    A read-only mapping.  Values are float NumPy arrays, or lazily read
    :class:`zarr.Array` objects when the extraction wrote to an
    :class:`~repscope.storage.activation_store.ActivationStore` (use :meth:`load` for NumPy).

    Attributes
    ----------
    token_index : numpy.ndarray or None
        For per-token extraction (``pooling="none"``): an ``(n, 2)`` int64
        array whose row ``i`` is ``(sentence, position)`` of activation row
        ``i``; ``position`` counts only the kept (non-padding) tokens of that
        sentence, from 0.  ``None`` for pooled activations.
    store : ActivationStore or None
        The store written to, if any.
    store_keys : dict[str, str]
        Layer name -> store key (empty without a store).
    provenance : dict
        Model id, hashes and options shared by all layers.
    reused : tuple[str, ...]
        Layers taken from the store without recomputation.
    """

    def __init__(
        self,
        arrays: dict[str, Any],
        *,
        token_index: np.ndarray | None = None,
        store: ActivationStore | None = None,
        store_keys: dict[str, str] | None = None,
        provenance: dict[str, Any] | None = None,
        reused: Sequence[str] = (),
    ) -> None:
        self._arrays = dict(arrays)
        self.token_index = token_index
        self.store = store
        self.store_keys = dict(store_keys or {})
        self.provenance = dict(provenance or {})
        self.reused = tuple(reused)

    def __getitem__(self, layer: str) -> Any:
        try:
            return self._arrays[layer]
        except KeyError:
            raise UnknownLayerError(
                f"no activations for layer {layer!r}; extracted layers: "
                f"{', '.join(map(repr, self._arrays))}{close_matches_hint(layer, list(self))}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def load(self, layer: str) -> np.ndarray:
        """The activations of ``layer`` as an in-memory NumPy array."""
        return np.asarray(self[layer][...])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k!r}: {tuple(v.shape)}" for k, v in self._arrays.items())
        where = f", store={str(self.store.path)!r}" if self.store is not None else ""
        return f"Activations({{{shapes}}}{where})"




# ---------------------------------------------------------------- devices
def resolve_device(device: Any, model: Any) -> Any:
    """The torch device to run on: ``device`` if given, else where the model lives."""
    import torch

    if device is None:
        for t in list(model.parameters()) + list(model.buffers()):
            return t.device
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RepscopeError(f"invalid device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RepscopeError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RepscopeError(f"device {device!r} requested but MPS is not available")
    return dev


def model_devices(model: Any) -> set[Any]:
    return {t.device for t in list(model.parameters()) + list(model.buffers())}


def same_device(a: Any, b: Any) -> bool:
    """``cuda`` and ``cuda:0`` (the current device) count as the same device."""
    import torch

    if a.type != b.type:
        return False
    if a.index == b.index:
        return True
    if a.type == "cuda":
        cur = torch.cuda.current_device()
        return (a.index if a.index is not None else cur) == (
            b.index if b.index is not None else cur
        )
    return False


def to_device(batch: Any, device: Any) -> Any:
    """Move every tensor inside a (nested) batch to ``device``."""
    if hasattr(batch, "to") and hasattr(batch, "device"):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple):
        return tuple(to_device(v, device) for v in batch)
    if isinstance(batch, list):
        return [to_device(v, device) for v in batch]
    return batch


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Put every submodule in eval mode; restore each module's own flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def on_device(model: Any, device: Any) -> Iterator[None]:
    """Temporarily move ``model`` to ``device`` (and back) when it lives elsewhere."""
    current = model_devices(model)
    if not current or all(same_device(d, device) for d in current):
        yield
        return
    if len(current) > 1:
        raise RepscopeError(
            f"the model is spread over several devices ({sorted(map(str, current))}); pass "
            "device=None to run it where it is"
        )
    (origin,) = current
    model.to(device)
    try:
        yield
    finally:
        model.to(origin)


def rows_to_numpy(rows: Any, dtype: np.dtype) -> np.ndarray:
    """CPU NumPy copy of a torch batch in ``dtype`` (half/bfloat16/int go through float32)."""
    import torch

    t = rows.detach().to("cpu")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    return t.numpy().astype(dtype, copy=False)


# ---------------------------------------------------------------- store
def as_store(store: Any) -> ActivationStore | None:
    if store is None or isinstance(store, ActivationStore):
        return store
    if isinstance(store, (str, os.PathLike)):
        return ActivationStore(Path(store))
    raise RepscopeError(
        f"store must be an ActivationStore, a path or None, got {type(store).__name__}"
    )


def check_float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise RepscopeError(f"dtype must be a floating dtype (e.g. float32), got {dt}")
    return dt


#: version of what extraction stores for given weights, data and options; bump it when the
#: stored activations change (hooks, pooling, casting), so that old entries are not reused.
#: Entries written before the field existed are version 1.
EXTRACTOR_VERSION = 1

#: provenance that must match for a stored entry to be reused (a cache hit); the model id,
#: layer and pooling are part of the entry's key
_MATCH_FIELDS = ("weights_sha256", "dataset_sha256", "options", "dtype", "extractor_version")


class Sink:
    """Collect per-layer rows in memory or stream them to store writers.

    Parameters
    ----------
    layers : the layer names to collect.
    store : optional store; entries are named ``make_key(model_id, layer, pooling)``.
    provenance : dict of fields common to every entry (model, hashes, options, ...).
    dataset_sha256 : the dataset hash when known before extraction (enables reuse).
    """

    def __init__(
        self,
        layers: Sequence[str],
        *,
        store: ActivationStore | None,
        model_id: str,
        pooling: str,
        dtype: np.dtype,
        provenance: dict[str, Any],
        overwrite: bool,
        chunk_rows: int | None,
        with_index: bool,
        dataset_known: bool,
    ) -> None:
        self.layers = list(layers)
        self.store = store
        self.dtype = dtype
        provenance = {**provenance, "extractor_version": EXTRACTOR_VERSION}
        self.provenance = provenance
        self.with_index = with_index
        self.keys: dict[str, str] = {}
        self.reused: list[str] = []
        self._mem: dict[str, list[np.ndarray]] = {}
        self._idx: list[np.ndarray] = []
        self._writers: dict[str, EntryWriter] = {}
        if store is None:
            self._mem = {layer: [] for layer in self.layers}
            return
        for layer in self.layers:
            self.keys[layer] = make_key(model_id, layer, pooling)
        todo = []
        for layer in self.layers:
            key = self.keys[layer]
            if store.has(key) and not overwrite:
                old = store.provenance(key)
                same = dataset_known and all(
                    _stored(old, f) == _expected(f, provenance, dtype) for f in _MATCH_FIELDS
                )
                if same:
                    self.reused.append(layer)
                    continue
                why = (
                    "the dataset is an iterable whose hash is only known after extraction"
                    if not dataset_known
                    else _mismatch(old, provenance, dtype)
                )
                raise EntryExistsError(
                    f"store entry {key!r} already exists and cannot be reused ({why}); pass "
                    "overwrite=True to replace it, or use another model_id/store"
                )
            todo.append(layer)
        self.todo = todo
        try:
            for layer in todo:
                self._writers[layer] = store.writer(
                    self.keys[layer],
                    dtype=dtype,
                    chunk_rows=chunk_rows,
                    overwrite=overwrite,
                    layer=layer,
                    **provenance,
                )
        except BaseException:
            self.abort()
            raise

    @property
    def pending(self) -> list[str]:
        """Layers that still need to be computed."""
        return self.layers if self.store is None else self.todo

    def append(self, layer: str, rows: np.ndarray, index: np.ndarray | None = None) -> None:
        if self.store is None:
            self._mem[layer].append(rows.astype(self.dtype, copy=False))
        else:
            self._writers[layer].append(rows, index)

    def append_index(self, index: np.ndarray) -> None:
        if self.store is None:
            self._idx.append(index)

    def finish(self, **late_provenance: Any) -> Activations:
        """Commit the writers (with provenance known only now) and build the result."""
        arrays: dict[str, Any] = {}
        token_index: Any = None
        if self.store is None:
            for layer in self.layers:
                parts = self._mem[layer]
                if not parts:
                    raise ExtractionError("the dataset is empty: no batch was processed")
                arrays[layer] = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
            if self.with_index:
                token_index = np.concatenate(self._idx, axis=0).astype(np.int64, copy=False)
            self._mem = {}
            prov = dict(self.provenance, **late_provenance)
            return Activations(arrays, token_index=token_index, provenance=prov)
        try:
            for w in self._writers.values():
                w.provenance.update(late_provenance)
                if w.n == 0:
                    raise ExtractionError("the dataset is empty: no batch was processed")
            for layer in self.todo:
                self._writers[layer].commit()
                if self._writers[layer].reused:  # an identical entry appeared meanwhile
                    self.reused.append(layer)
        except BaseException:
            self.abort()
            raise
        for layer in self.layers:
            arrays[layer] = self.store.open(self.keys[layer])
        if self.with_index and self.layers:
            token_index = self.store.token_index(self.keys[self.layers[0]])
        prov = dict(self.provenance, **late_provenance)
        return Activations(
            arrays,
            token_index=token_index,
            store=self.store,
            store_keys=self.keys,
            provenance=prov,
            reused=self.reused,
        )

    def abort(self) -> None:
        for w in self._writers.values():
            w.abort()
        self._mem = {}


def _stored(old: dict[str, Any], field: str) -> Any:
    if field == "extractor_version":
        return old.get(field) or 1  # written before extractor versions existed
    return old.get(field)


def _expected(field: str, provenance: dict[str, Any], dtype: np.dtype) -> Any:
    if field == "dtype":
        return str(dtype)
    value = provenance.get(field)
    if isinstance(value, dict):  # compare in the JSON form the store keeps
        import json

        return json.loads(json.dumps(value))
    return value


def _mismatch(old: dict[str, Any], provenance: dict[str, Any], dtype: np.dtype) -> str:
    diffs = [
        f"{f}: stored {_stored(old, f)!r}, now {_expected(f, provenance, dtype)!r}"
        for f in _MATCH_FIELDS
        if _stored(old, f) != _expected(f, provenance, dtype)
    ]
    return "; ".join(diffs) or "unknown difference"
