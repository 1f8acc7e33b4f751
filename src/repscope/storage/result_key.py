"""The key of a results row (:class:`ResultKey`), canonical JSON and the recorded versions.

Used by :mod:`repscope.storage.results_db` (the database) and by the engine,
which builds the key of every cell before computing it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

import numpy as np

from repscope.core.errors import InvalidParameterError

__all__ = [
    "IDENTITY_COLUMNS",
    "KEY_COLUMNS",
    "ResultKey",
    "canonical_json",
    "environment",
    "json_default",
    "utc_now",
]

#: the UNIQUE identity of a row: one stored row per cell (of one measure version)
IDENTITY_COLUMNS: tuple[str, ...] = (
    "dataset",
    "model_a",
    "layer_a",
    "model_b",
    "layer_b",
    "measure",
    "params",
    "stats",
    "n",
    "seed",
)

#: the fields of :class:`ResultKey`: the identity and the measure's version
KEY_COLUMNS: tuple[str, ...] = (*IDENTITY_COLUMNS, "measure_version")

# ------------------------------------------------------------ canonical JSON
def json_default(v: Any) -> Any:
    """``default=`` hook for :func:`json.dumps`: NumPy scalars and arrays, else ``str``."""
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "shape") and hasattr(v, "dtype"):  # numpy array or torch tensor
        arr = np.ascontiguousarray(np.asarray(v.detach().cpu() if hasattr(v, "detach") else v))
        digest = hashlib.sha256(arr.tobytes()).hexdigest()[:16]
        return {"array_sha256": digest, "shape": list(arr.shape), "dtype": str(arr.dtype)}
    return repr(v)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces); arrays become a short content hash."""
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


# --------------------------------------------------------------- environment
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, str | None]:
    """Versions recorded with every row (torch is looked up without importing it)."""
    from repscope.core.version import __version__

    return {
        "repscope_version": __version__,
        "numpy_version": np.__version__,
        "torch_version": _version("torch"),
        "python_version": platform.python_version(),
    }


def utc_now() -> str:
    """The current UTC time, ISO 8601 with microseconds (the rows' ``timestamp``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# ---------------------------------------------------------------- key
def _check_layer(layer: Any, name: str) -> int | str:
    if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer, str)):
        raise InvalidParameterError(f"{name} must be an int or a str, got {layer!r}")
    return int(layer) if isinstance(layer, (int, np.integer)) else layer


def _check_version(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InvalidParameterError(f"measure_version must be an integer >= 1, got {v!r}")
    return int(v)


class ResultKey(NamedTuple):
    """The key of a results row: its UNIQUE identity and the measure's version.

    ``measure_version`` is ``MeasureInfo.version`` of the measure that computed
    the row (``None`` for rows written before measure versions existed); two
    keys that differ only in it name the same cell computed with different
    meanings of the measure.
    """

    dataset: str
    model_a: str
    layer_a: int | str
    model_b: str
    layer_b: int | str
    measure: str
    params: str
    stats: str
    n: int
    seed: int
    measure_version: int | None = None

    @classmethod
    def make(
        cls,
        model_a: str,
        layer_a: int | str,
        model_b: str,
        layer_b: int | str,
        measure: str,
        *,
        params: Mapping[str, Any] | str | None = None,
        stats: Mapping[str, Any] | str | None = None,
        n: int,
        seed: int = 0,
        dataset: str = "",
        measure_version: int | None = None,
    ) -> ResultKey:
        """Build a key, canonicalising ``params`` and ``stats`` (mappings → JSON)."""
        for name, v in (("model_a", model_a), ("model_b", model_b), ("measure", measure),
                        ("dataset", dataset)):
            if not isinstance(v, str):
                raise InvalidParameterError(f"{name} must be a str, got {v!r}")
        p = params if isinstance(params, str) else canonical_json(dict(params or {}))
        s = stats if isinstance(stats, str) else canonical_json(dict(stats or {}))
        return cls(
            dataset, model_a, _check_layer(layer_a, "layer_a"), model_b,
            _check_layer(layer_b, "layer_b"), measure, p, s, int(n), int(seed),
            _check_version(measure_version),
        )

    @property
    def identity(self) -> tuple[Any, ...]:
        """The key without the version: which cell the row is about."""
        return tuple(self)[: len(IDENTITY_COLUMNS)]
