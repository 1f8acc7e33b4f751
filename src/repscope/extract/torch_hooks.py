"""Activation extraction from any ``torch.nn.Module`` by module name.

Layers are named as in ``model.named_modules()`` (``"features.3"``,
``"layer2.0.conv1"``, ...); :func:`list_layers` lists them.  A forward hook
on each requested module records its output for every batch; the hooks are
removed when extraction ends, also when it fails.  The model runs in eval mode
under ``torch.no_grad()``; each submodule's previous train/eval flag is
restored afterwards.

Checks that catch silent mistakes
---------------------------------
* an unknown name raises :class:`UnknownLayerError` with the closest module
  names (a ``state_dict`` key such as ``"fc.weight"`` is recognised and the
  owning module suggested);
* a module that never runs in ``forward`` raises instead of returning nothing;
* a module that runs more than once per forward (a shared activation module,
  a recurrent cell) raises, since its "activation" would be ambiguous;
* an output whose first axis is not the batch raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.core.optional import require
from repscope.extract._common import (
    Activations,
    ExtractionError,
    Sink,
    UnknownLayerError,
    as_store,
    check_float_dtype,
    close_matches_hint,
    eval_mode,
    on_device,
    progress_bar,
    resolve_device,
    rows_to_numpy,
    to_device,
)
from repscope.extract.pooling import SPATIAL_POOLINGS, pool_spatial
from repscope.extract.provenance import DatasetHasher, dataset_hash, weights_hash

__all__ = ["extract_torch", "list_layers", "resolve_layers"]


def _require_module(model: Any) -> None:
    torch = require("torch", purpose="extraction from torch models")
    if not isinstance(model, torch.nn.Module):
        raise RepscopeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def list_layers(model: Any, *, leaves_only: bool = False) -> list[str]:
    """Names of the submodules of ``model`` usable as layers, in definition order.

    Parameters
    ----------
    model : torch.nn.Module
    leaves_only : bool
        Only modules without children (``Linear``, ``Conv2d``, ``ReLU``, ...).

    The root module itself (name ``""``) is not listed.
    """
    _require_module(model)
    out = []
    for name, mod in model.named_modules():
        if not name:
            continue
        if leaves_only and next(mod.children(), None) is not None:
            continue
        out.append(name)
    return out


def resolve_layers(model: Any, layers: str | Sequence[str]) -> dict[str, Any]:
    """Map each requested layer name to its module, with helpful errors.

    Raises
    ------
    UnknownLayerError
        For a name that is not a submodule; the message lists close matches,
        or the owning module when the name is a parameter/buffer key.
    """
    _require_module(model)
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise RepscopeError("no layers requested; see repscope.extract.list_layers(model)")
    modules = dict(model.named_modules())
    available = [n for n in modules if n]
    seen: set[str] = set()
    out: dict[str, Any] = {}
    for name in names:
        if not isinstance(name, str):
            raise RepscopeError(f"layer names must be strings, got {name!r}")
        if name in seen:
            raise RepscopeError(f"layer {name!r} is requested twice")
        seen.add(name)
        if name and name in modules:
            out[name] = modules[name]
            continue
        params = dict(model.named_parameters())
        params.update(dict(model.named_buffers()))
        if name in params:
            owner = name.rsplit(".", 1)[0] if "." in name else ""
            if owner:
                msg = (
                    f"{name!r} is a parameter/buffer name (a state_dict key), not a module; "
                    f"hooks attach to modules: use {owner!r}"
                )
            else:
                msg = f"{name!r} is a parameter of the root module, not a submodule"
            raise UnknownLayerError(msg)
        if not name:
            raise UnknownLayerError(
                "the empty name is the whole model; name a submodule (list_layers(model))"
            )
        shown = ", ".join(map(repr, available[:30])) + (" ..." if len(available) > 30 else "")
        raise UnknownLayerError(
            f"model {type(model).__name__} has no module named {name!r}"
            f"{close_matches_hint(name, available)} Available: {shown} "
            "(repscope.extract.list_layers(model) lists all)"
        )
    return out


def _first_tensor(out: Any) -> Any:
    """The tensor a module output stands for: itself, or the first tensor inside."""
    if hasattr(out, "detach") and hasattr(out, "shape"):
        return out
    if isinstance(out, Mapping):
        for v in out.values():
            t = _first_tensor(v)
            if t is not None:
                return t
        return None
    if isinstance(out, (tuple, list)):
        for v in out:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _batch_len(batch: Any) -> int | None:
    if hasattr(batch, "shape") and len(batch.shape) > 0:
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        for v in batch.values():
            n = _batch_len(v)
            if n is not None:
                return n
        return None
    if isinstance(batch, (tuple, list)) and batch:
        return _batch_len(batch[0])
    return None


def _default_forward(model: Any, batch: Any) -> Any:
    """``model(**batch)``, ``model(batch[0])`` for ``(x, y)`` pairs, else ``model(batch)``."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def _param_dtype(model: Any) -> Any:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def _array_batches(data: Any, batch_size: int, float_dtype: Any) -> Iterable[Any]:
    import torch

    n = int(data.shape[0])
    for start in range(0, n, batch_size):
        block = data[start : start + batch_size]
        if isinstance(block, np.ndarray):
            block = np.ascontiguousarray(block)
            if not block.flags.writeable:  # read-only / memory-mapped input: copy the batch
                block = block.copy()
            t = torch.from_numpy(block)
            if t.is_floating_point() and float_dtype is not None:
                t = t.to(float_dtype)
            yield t
        else:
            yield block


def _plan_batches(
    data: Any, batch_size: int, float_dtype: Any
) -> tuple[Iterable[Any], int | None, str | None]:
    """(batches, number of batches or None, dataset hash if known upfront)."""
    import torch

    if isinstance(data, (np.ndarray, torch.Tensor)):
        if data.ndim == 0 or data.shape[0] == 0:
            raise RepscopeError(f"the dataset is empty or 0-d (shape {tuple(data.shape)})")
        if isinstance(data, np.ndarray) and data.dtype.kind not in "biuf":
            raise RepscopeError(f"dataset array has non-numeric dtype {data.dtype}")
        total = math.ceil(int(data.shape[0]) / batch_size)
        return _array_batches(data, batch_size, float_dtype), total, dataset_hash(data)
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(
        data, torch.utils.data.IterableDataset
    ):
        loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
        return loader, len(loader), None
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise RepscopeError(
            "data must be an array/tensor of inputs (n, ...), a torch Dataset, or an iterable "
            f"of batches; got {type(data).__name__}"
        )
    total = len(data) if hasattr(data, "__len__") else None
    return data, total, None


def extract_torch(
    model: Any,
    data: Any,
    layers: str | Sequence[str],
    *,
    batch_size: int = 64,
    device: Any = None,
    spatial: str = "flatten",
    dtype: Any = np.float32,
    forward: Callable[[Any, Any], Any] | None = None,
    store: Any = None,
    model_id: str | None = None,
    dataset_id: str | None = None,
    overwrite: bool = False,
    chunk_rows: int | None = None,
    progress: bool | None = None,
) -> Activations:
    """Record the activations of named modules of a torch model over a dataset.

    Parameters
    ----------
    model : torch.nn.Module
    data : array, tensor, torch Dataset, or iterable of batches
        An array/tensor of inputs ``(n, ...)`` is cut into batches of
        ``batch_size`` (floating NumPy input is cast to the model's parameter
        dtype); a map-style ``torch.utils.data.Dataset`` is wrapped in a
        ``DataLoader`` without shuffling; any other iterable (a ``DataLoader``,
        a list, a generator) yields ready batches.  A batch is passed as
        ``model(batch)``, ``model(batch[0])`` for tuples/lists (``(x, y)``
        pairs) or ``model(**batch)`` for mappings, unless ``forward`` is given.
    layers : str or sequence of str
        Module names from :func:`list_layers`.
    batch_size : int
        Batch size for arrays and datasets (ignored for iterables of batches).
    device : str or torch.device, optional
        Where to run.  Default: where the model's parameters are.  If the
        model lives elsewhere it is moved there for the extraction and moved
        back afterwards.
    spatial : {"flatten", "mean"}
        For outputs with more than two axes, taken as channel-first
        ``(n, c, *spatial)`` (``Conv1d/2d/3d``): ``"flatten"`` keeps every unit,
        ``(n, c * prod(spatial))``; ``"mean"`` averages over the spatial axes,
        ``(n, c)``.  For token-major outputs ``(n, t, d)`` use
        :func:`~repscope.extract.extract_hf` or flatten.
    dtype : numpy floating dtype
        Output dtype (default float32).
    forward : callable ``(model, batch) -> Any``, optional
        Custom call for models with unusual inputs.
    store : ActivationStore or path, optional
        Stream each layer, batch by batch, into this store (memory stays at
        about one chunk per layer) under ``"<model_id>/<layer>/<spatial>"``,
        with provenance (weights hash, dataset hash, options).  Existing
        entries with identical provenance are reused without running the
        model; other existing entries raise unless ``overwrite``.
    model_id : str, optional
        Name used in store keys; default ``"<ClassName>-<first 12 hex of weights hash>"``.
    dataset_id : str, optional
        Recorded in the provenance.
    overwrite : bool
        Replace existing store entries.
    chunk_rows : int, optional
        Rows per store chunk (default: about 8 MiB per chunk).
    progress : bool or None
        Progress bar on stderr; ``None`` (default): when the session is interactive
        (stderr is a terminal, or IPython/Jupyter) and there is more than one batch.

    Returns
    -------
    Activations
        A mapping layer -> ``(n, d)`` array (NumPy, or lazy zarr arrays when
        ``store`` is given).

    Raises
    ------
    UnknownLayerError, ExtractionError, RepscopeError
    """
    _require_module(model)  # a clear error when torch is not installed
    import torch

    modules = resolve_layers(model, layers)
    if spatial not in SPATIAL_POOLINGS:
        raise RepscopeError(f"spatial must be one of {SPATIAL_POOLINGS}, got {spatial!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise RepscopeError(f"batch_size must be a positive integer, got {batch_size!r}")
    out_dtype = check_float_dtype(dtype)
    dev = resolve_device(device, model)
    batches, total, upfront_hash = _plan_batches(data, batch_size, _param_dtype(model))
    st = as_store(store)
    call = forward or _default_forward

    provenance: dict[str, Any] = {
        "dataset": dataset_id,
        "dataset_sha256": upfront_hash,
        "pooling": spatial,
        "options": {"extractor": "torch", "spatial": spatial},
    }
    if st is not None:  # hashing the weights costs a pass over them: only for the store
        w_hash = weights_hash(model)
        model_id = model_id or f"{type(model).__name__}-{w_hash[:12]}"
        provenance["weights_sha256"] = w_hash
    model_id = model_id or type(model).__name__
    provenance["model"] = model_id
    sink = Sink(
        list(modules),
        store=st,
        model_id=model_id,
        pooling=spatial,
        dtype=out_dtype,
        provenance=provenance,
        overwrite=overwrite,
        chunk_rows=chunk_rows,
        with_index=False,
        dataset_known=upfront_hash is not None,
    )
    pending = sink.pending
    if not pending:
        return sink.finish()

    captured: dict[str, list[Any]] = {name: [] for name in pending}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_mod: Any, _inp: Any, out: Any) -> None:
            t = _first_tensor(out)
            if t is None:
                raise ExtractionError(
                    f"layer {name!r} returned {type(out).__name__} without any tensor"
                )
            captured[name].append(pool_spatial(t.detach(), spatial))

        return hook

    hasher = DatasetHasher() if upfront_hash is None else None
    handles: list[Any] = []
    n_rows = 0
    try:
        with eval_mode(model), on_device(model, dev), torch.no_grad():
            for name in pending:
                handles.append(modules[name].register_forward_hook(make_hook(name)))
            with progress_bar(total, f"extract {type(model).__name__}", progress) as advance:
                for batch in batches:
                    if hasher is not None:
                        hasher.update(batch)
                    for v in captured.values():
                        v.clear()
                    expected = _batch_len(batch)
                    call(model, to_device(batch, dev))
                    for name in pending:
                        rows = _collect(name, captured[name], expected)
                        sink.append(name, rows_to_numpy(rows, out_dtype))
                    n_rows += int(rows.shape[0])
                    advance(1)
    except BaseException:
        sink.abort()
        raise
    finally:
        for h in handles:
            h.remove()
        for v in captured.values():
            v.clear()
    if n_rows == 0:
        sink.abort()
        raise ExtractionError("the dataset is empty: no batch was processed")
    late = {"dataset_sha256": hasher.hexdigest()} if hasher is not None else {}
    return sink.finish(**late)


def _collect(name: str, outs: list[Any], expected: int | None) -> Any:
    if not outs:
        raise ExtractionError(
            f"layer {name!r} did not run during the forward pass (is it used in forward()? "
            "modules that are defined but never called produce no activations)"
        )
    if len(outs) > 1:
        raise ExtractionError(
            f"layer {name!r} ran {len(outs)} times in one forward pass (a module reused at "
            "several places, e.g. one shared ReLU); its activation is ambiguous. Give each use "
            "its own module, or hook a module that runs once"
        )
    rows = outs[0]
    if expected is not None and int(rows.shape[0]) != expected:
        raise ExtractionError(
            f"layer {name!r} output has {int(rows.shape[0])} rows for a batch of {expected} "
            "inputs; its first axis is not the batch (e.g. a sequence-first RNN output)"
        )
    return rows
