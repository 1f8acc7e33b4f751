"""The units of work of a grid: representation keys, pairs and :class:`Task` rows.

A :class:`Task` is one row to compute — a measure of an ordered pair of
representations, stored under a :class:`~repscope.storage.results_db.ResultKey`.
The in-process runner (:mod:`repscope.engine.local`) and the Dask backend
(:mod:`repscope.engine.distributed`) both consume them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from repscope.core.arrays import is_torch
from repscope.core.errors import InputShapeError, InvalidParameterError
from repscope.measures.base import Measure
from repscope.storage.results_db import ResultKey

#: a representation key: (model, layer)
RepKey = tuple[str, Any]

PAIR_MODES = ("cross", "within", "all")


# ------------------------------------------------------------------ inputs
def flatten_representations(representations: Mapping[Any, Any]) -> dict[RepKey, Any]:
    """Accept ``{(model, layer): array}`` or ``{model: {layer: array}}``."""
    out: dict[RepKey, Any] = {}
    for k, v in representations.items():
        if isinstance(v, Mapping):
            if not isinstance(k, str):
                raise InvalidParameterError(f"model names must be str, got {k!r}")
            for layer, arr in v.items():
                out[(k, layer)] = arr
        else:
            if not (isinstance(k, tuple) and len(k) == 2):
                raise InvalidParameterError(
                    f"representation keys must be (model, layer) pairs, got {k!r}; or pass "
                    "{model: {layer: array}}"
                )
            out[k] = v
    if not out:
        raise InvalidParameterError("no representations given")
    for model, layer in out:
        if not isinstance(model, str):
            raise InvalidParameterError(f"model names must be str, got {model!r}")
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (str, int, np.integer)):
            raise InvalidParameterError(f"layer names must be str or int, got {layer!r}")
    return {(m, int(la) if isinstance(la, np.integer) else la): a for (m, la), a in out.items()}


def array_shape(a: Any) -> tuple[int, ...]:
    shape = getattr(a, "shape", None)
    if shape is None:
        shape = np.shape(np.asarray(a))
    return tuple(int(s) for s in shape)


def check_sizes(reps: Mapping[RepKey, Any]) -> int:
    sizes: dict[int, list[RepKey]] = {}
    for key, a in reps.items():
        shape = array_shape(a)
        if len(shape) != 2:
            raise InputShapeError(
                f"representation {key} must be 2-D (n, d), got shape {shape}; pool or flatten "
                "token/spatial axes first"
            )
        sizes.setdefault(shape[0], []).append(key)
    if len(sizes) > 1:
        desc = "; ".join(f"n={n}: {keys[:3]}{' ...' if len(keys) > 3 else ''}"
                         for n, keys in sorted(sizes.items()))
        raise InputShapeError(
            f"all representations must have the same number of samples (rows), got {desc}"
        )
    return next(iter(sizes))


def materialise(a: Any) -> Any:
    if is_torch(a) or isinstance(a, np.ndarray):
        return a
    return np.asarray(a)


def pair_list(keys: Sequence[RepKey], pairs: Any = "cross") -> list[tuple[RepKey, RepKey]]:
    """Unordered pairs of representation keys.

    ``"cross"``: layers of different models (every layer of model A with every
    layer of model B, models in order of first appearance); ``"within"``:
    different layers of the same model; ``"all"``: both.  An explicit list of
    ``(key_a, key_b)`` pairs is checked and returned as is.
    """
    keys = list(keys)
    if not isinstance(pairs, str):
        out = []
        known = set(keys)
        for p in pairs:
            ok = isinstance(p, (tuple, list)) and len(p) == 2 and all(
                isinstance(k, (tuple, list)) and len(k) == 2 for k in p
            )
            if not ok:
                raise InvalidParameterError(
                    f"pairs must hold ((model, layer), (model, layer)) tuples, got {p!r}"
                )
            a, b = tuple(p[0]), tuple(p[1])
            for k in (a, b):
                if k not in known:
                    raise InvalidParameterError(f"pair refers to unknown representation {k!r}")
            out.append((a, b))
        return out
    if pairs not in PAIR_MODES:
        raise InvalidParameterError(f"pairs must be one of {PAIR_MODES} or a list, got {pairs!r}")
    out = []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            same = a[0] == b[0]
            if (pairs == "cross" and not same) or (pairs == "within" and same) or pairs == "all":
                out.append((a, b))
    return out


# ------------------------------------------------------------------ tasks
class Task:
    """One row to compute: measure ``m`` of the ordered pair ``(a, b)``, stored under ``key``."""

    __slots__ = ("a", "b", "m", "key")

    def __init__(self, a: RepKey, b: RepKey, m: Measure, key: ResultKey) -> None:
        self.a, self.b, self.m, self.key = a, b, m, key

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.a, self.b, self.m, self.key)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.a, self.b, self.m, self.key = state

    def __repr__(self) -> str:
        return f"Task({self.a} x {self.b}: {self.m.info.name})"


def row_for(task: Task, row: Mapping[str, Any], dataset: str, seed: int,
             stats_json: str) -> dict[str, Any]:
    out = dict(row)
    out.update(dataset=dataset, model_a=task.a[0], layer_a=task.a[1], model_b=task.b[0],
               layer_b=task.b[1], seed=seed, stats=stats_json,
               measure_version=task.key.measure_version)
    return out


#: ``emit(task, row)`` receives each finished result row (measure columns only)
Emit = Callable[[Task, dict[str, Any]], None]
