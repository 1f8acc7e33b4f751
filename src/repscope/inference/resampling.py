"""Row resampling shared by the permutation test, the bootstrap and held-out splits.

Rows of ``X`` and ``Y`` are the paired inputs; per-sample measure parameters
(labels, weights) follow the rows they belong to (:func:`with_rows`), and the
prepared form of a representation is permuted instead of recomputed where
its cached quantities have a known transformation (:func:`permute_prepared`).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from repscope.core.arrays import Array, is_torch, to_float
from repscope.core.errors import (
    InputShapeError,
    InvalidParameterError,
)
from repscope.measures.base import Measure, Prepared


# --------------------------------------------------------------- warnings
def merge_messages(*groups: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for g in groups:
        for m in g:
            seen.setdefault(m, None)
    return tuple(seen)


# --------------------------------------------------------------- helpers
def as_rng(seed: Any) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def take_rows(a: Array, idx: np.ndarray) -> Array:
    if is_torch(a):
        import torch

        return a[torch.as_tensor(idx, device=a.device)]
    return a[idx]


def take_both(a: Array, idx: np.ndarray) -> Array:
    return take_rows(take_rows(a, idx).T, idx).T


def _is_per_sample(v: Any, n: int) -> bool:
    if isinstance(v, (str, bytes)) or v is None:
        return False
    shape = getattr(v, "shape", None)
    if shape is not None:
        return len(shape) >= 1 and int(shape[0]) == n
    return isinstance(v, (list, tuple)) and len(v) == n and n > 1


def per_sample_params(m: Measure, n: int) -> list[str]:
    """Names of parameters holding one value per sample (labels, weights...)."""
    return [k for k, v in m.params.items() if _is_per_sample(v, n)]


def with_rows(m: Measure, names: list[str], idx: np.ndarray) -> Measure:
    """A copy of ``m`` whose per-sample parameters follow the row selection ``idx``."""
    if not names:
        return m
    params = dict(m.params)
    for k in names:
        v = params[k]
        params[k] = take_rows(v, idx) if hasattr(v, "shape") else [v[i] for i in idx]
    return type(m)(**params)


def group_members(groups: Any, n: int) -> list[np.ndarray] | None:
    """Row indices of each group of ``groups`` (one label per row); ``None`` for no groups.

    Raises :class:`InputShapeError` unless there is one label per row and
    :class:`InvalidParameterError` for fewer than two groups.
    """
    if groups is None:
        return None
    g = np.asarray(groups)
    if g.shape != (n,):
        raise InputShapeError(f"groups must hold one label per input ({n}), got shape {g.shape}")
    _, inverse = np.unique(g, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    members = np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)
    if len(members) < 2:
        raise InvalidParameterError("groups must hold at least two groups to resample")
    return members


def bootstrap_rows(rng: np.random.Generator, n: int,
                   members: list[np.ndarray] | None = None) -> np.ndarray:
    """Sorted row indices of one bootstrap resample of ``n`` rows (repeats included).

    Without ``members`` (:func:`group_members`) ``n`` rows are drawn with
    replacement; with them as many groups are drawn with replacement as there
    are, and every row of a drawn group is taken (the resample's size then
    varies with the sizes of the groups drawn).
    """
    if members is None:
        return np.sort(rng.integers(0, n, size=n))
    drawn = rng.integers(0, len(members), size=len(members))
    return np.sort(np.concatenate([members[g] for g in drawn]))


def value_of(m: Measure, X: Array, Y: Array) -> float:
    return to_float(m.compare_prepared(m.prepare(X, "X"), m.prepare(Y, "Y")))


# ----------------------------------------------------- prepared permutation
#: how cached quantities transform when the samples are permuted
_ROW_KEYS = frozenset({"centered", "rownorm2"})
_BOTH_KEYS = frozenset({"gram", "gram_mixed"})
# per-representation summaries that do not depend on the row order
_INVARIANT_KEYS = frozenset({"sxx", "sxx_mixed", "mean", "low_precision", "sq_frobenius"})
# (float32 centred rows, float64 shift) pairs: rows of the first element move
_ROW_PAIR_KEYS = frozenset({"centered32"})
_BOTH_TUPLE_HEADS = frozenset({"ckernel", "ukernel"})


def _cache_rule(key: Any, value: Any, n: int) -> str | None:
    if key in _ROW_PAIR_KEYS and isinstance(value, tuple) and len(value) == 2:
        return "row_pair" if tuple(getattr(value[0], "shape", ()))[:1] == (n,) else None
    shape = tuple(getattr(value, "shape", ()))
    if key in _ROW_KEYS and len(shape) in (1, 2) and shape[0] == n:
        return "rows"
    if key in _INVARIANT_KEYS:
        return "same"
    square = len(shape) == 2 and shape[0] == n and shape[1] == n
    if key in _BOTH_KEYS and square:
        return "both"
    if isinstance(key, tuple) and key and key[0] in _BOTH_TUPLE_HEADS and square:
        return "both"
    return None


def _fast_permute(p: Prepared, perm: np.ndarray) -> Prepared | None:
    cache: dict[Any, Any] = {}
    for key, value in p.cache.items():
        rule = _cache_rule(key, value, p.n)
        if rule is None:
            return None
        if rule == "rows":
            cache[key] = take_rows(value, perm)
        elif rule == "row_pair":
            cache[key] = (take_rows(value[0], perm), value[1])
        elif rule == "both":
            cache[key] = take_both(value, perm)
        else:
            cache[key] = value
    return Prepared(take_rows(p.data, perm), cache)


def permute_prepared(m: Measure, p: Prepared, perm: np.ndarray, *, exact: bool = False) -> Prepared:
    """The prepared form of ``p.data[perm]`` (rows permuted), reusing ``p`` where possible.

    If the measure defines ``permute_prepared(p, perm)`` it is used.  Otherwise
    cached quantities with a known transformation are permuted instead of
    recomputed — centred data and row norms (rows), sample × sample matrices such as Gram
    and centred kernel matrices (rows and columns: ``P K Pᵀ``) and feature ×
    feature moments (unchanged).  If any cache entry is unknown, or
    ``exact=True``, the permuted data are prepared from scratch.
    """
    perm = np.asarray(perm)
    if perm.shape != (p.n,):
        raise InputShapeError(f"perm must have shape ({p.n},), got {perm.shape}")
    hook = getattr(m, "permute_prepared", None)
    if callable(hook) and not exact:
        return hook(p, perm)
    if not exact:
        fast = _fast_permute(p, perm)
        if fast is not None:
            return fast
    return m.prepare(take_rows(p.data, perm), "Y")
