"""Centred ranks of long vectors (the Spearman step of RSA), with ties averaged.

:func:`centred_ranks` returns ``rank(v) − mean rank`` for vectors of up to
billions of entries (RDMs of many stimuli).  Two exact paths: a counting pass
when the values take few distinct float32 keys, else a sort of packed 64-bit
words (value key, position) in groups of :data:`RANK_GROUP` entries.  Both
give ``scipy.stats.rankdata(v) − (m + 1)/2`` exactly.
"""

from __future__ import annotations

import sys

import numpy as np

from repscope.core.errors import DegenerateInputError

__all__ = ["RANK_GROUP", "centred_ranks"]

#: RDM entries ranked by one packed sort (8 bytes each); larger RDMs are ranked in groups
RANK_GROUP = 2**27
#: entries per chunk of the O(m) passes over whole RDMs (histogram, group selection, sums)
_PASS = 2**22
#: entries per cache-sized chunk of the packing, ranking and dot-product passes
_CHUNK = 2**16
#: index of the high (key) half of a packed uint64 word viewed as two uint32
_HIGH = 1 if sys.byteorder == "little" else 0


def _keys_into(v: np.ndarray, out: np.ndarray) -> None:
    """Order-preserving uint32 keys of float32 ``v`` into ``out`` (−0.0 and +0.0: one key).

    Non-negative floats get their bits with the top bit set, negative ones
    their inverted bits, so unsigned key order is float order.
    """
    bits = (v + np.float32(0.0)).view(np.uint32)  # −0.0 + 0.0 = +0.0
    flip = (bits.view(np.int32) >> 31).view(np.uint32)  # all ones for negative values
    flip |= np.uint32(0x80000000)
    np.bitwise_xor(bits, flip, out=out)


def _sort_keys(v: np.ndarray) -> np.ndarray:
    """Order-preserving uint32 keys of float32 values (see :func:`_keys_into`)."""
    out = np.empty(v.shape, dtype=np.uint32)
    _keys_into(v, out)
    return out


def _words(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strided uint32 views (keys, positions) of the high and low halves of packed words."""
    w = packed.view(np.uint32).reshape(-1, 2)
    return w[:, _HIGH], w[:, 1 - _HIGH]


def _run_end(keys: np.ndarray, i: int) -> int:
    """First index after ``i`` whose key differs from ``keys[i]`` in sorted ``keys``."""
    k = keys.shape[0]
    key = keys[i]
    lo, hi, step = i, i + 1, 1  # keys[lo] == key; hi == k or keys[hi] != key at the end
    while hi < k and keys[hi] == key:
        lo, hi, step = hi, min(k, hi + 2 * step), 2 * step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if keys[mid] == key:
            lo = mid
        else:
            hi = mid
    return hi


def _rank_sorted(packed: np.ndarray, offset: int, m: int, out: np.ndarray) -> None:
    """Write ``2r − (m+1)`` into ``out`` for one sorted block of packed (key, position) words.

    ``offset`` is the number of RDM entries with a smaller key than this block.
    A run of equal keys at block indices [s, e) has the average rank
    ``offset + (s + e + 1)/2``, i.e. ``2r − (m+1) = s + e + 2·offset − m``.
    The block is processed in cache-sized chunks: run boundaries inside a
    chunk come from comparing neighbouring keys, a run entering the chunk
    keeps its start from the previous chunk, and the end of a run leaving the
    chunk is found by a galloping search; ranks are scattered to their
    positions chunk by chunk.
    """
    keys, positions = _words(packed)
    k = keys.shape[0]
    const = 2 * offset - m
    run_start = 0  # start of the last run of the previous chunk
    for i in range(0, k, _CHUNK):
        j = min(k, i + _CHUNK)
        kc = keys[i:j]
        inner = np.flatnonzero(kc[1:] != kc[:-1])
        inner += i + 1  # block indices where a new run starts inside (i, j)
        first = run_start if i and keys[i] == keys[i - 1] else i
        last = _run_end(keys, j - 1) if j < k and keys[j] == keys[j - 1] else j
        if inner.size == j - i - 1 and first == i and last == j:  # no ties in this chunk
            vals = np.arange(2 * i + 1 + const, 2 * j + 1 + const, 2, dtype=np.int32)
            run_start = j - 1
        else:
            starts = np.concatenate(([first], inner))
            ends = np.concatenate((inner, [last]))
            doubled = (starts + ends + const).astype(np.int32)
            counts = np.diff(np.concatenate(([i], inner, [j])))
            vals = np.repeat(doubled, counts)
            run_start = int(starts[-1])
        # a contiguous index array scatters ~2× faster than the strided uint32 view
        out[positions[i:j].astype(np.intp)] = vals


def centred_ranks(v: np.ndarray, group: int = RANK_GROUP, method: str = "auto") -> np.ndarray:
    """Average ranks of ``v`` as the int32 integers ``2r − (m + 1)`` (mean 0).

    Ranks of the float32 rounding of ``v`` (see the module docstring); ties
    get their average rank.  ``method="count"`` counts the order-preserving
    32-bit keys in a table over the key range [kmin, kmax] (:func:`_count_ranks`);
    ``method="sort"`` sorts packed (key, position) words, in groups of at most
    ``group`` entries split by a histogram of the keys' top 16 bits (one group
    may exceed it when a single histogram bin does; :func:`_sort_ranks`).
    ``"auto"`` counts when the key range has at most ``min(m, group)/4`` keys
    (its tables then take less memory than the packed words) and the values
    are finite, and sorts otherwise.  Both give identical ranks.  Needs m < 2³¹.
    """
    m = int(v.shape[0])
    if m >= 2**31 - 1:
        raise DegenerateInputError(f"rsa: {m} dissimilarities exceed the rank range (2^31)")
    if method not in ("auto", "count", "sort"):
        raise ValueError(f"centred_ranks: method must be 'auto', 'count' or 'sort', not {method!r}")
    if v.dtype != np.float32:
        v = v.astype(np.float32)
    out = np.empty(m, dtype=np.int32)
    if not m:
        return out
    span = None
    if method != "sort":
        lo, hi = v.min(), v.max()
        if np.isfinite(lo) and np.isfinite(hi):
            kmin, kmax = (int(k) for k in _sort_keys(np.array([lo, hi], dtype=np.float32)))
            span = (kmin, kmax)
        elif method == "count":
            raise ValueError("centred_ranks: method='count' needs finite values")
    if span is not None and (
        method == "count" or span[1] - span[0] + 1 <= min(m, group) // 4
    ):
        _count_ranks(v, span[0], span[1], out)
    else:
        _sort_ranks(v, group, out)
    return out


def _count_ranks(v: np.ndarray, kmin: int, kmax: int, out: np.ndarray) -> None:
    """Average ranks by counting: ``out = 2r − (m+1)`` for float32 ``v`` with keys in [kmin, kmax].

    With cᵢ the number of entries with key <= i (a cumulative count over the
    R = kmax − kmin + 1 keys) and nᵢ those with key i, an entry with key i has
    the average rank ``cᵢ − (nᵢ − 1)/2``, i.e. ``2r − (m+1) = 2cᵢ − nᵢ − m``.
    One pass counts the keys (``bincount``, in chunks of max(2²², R) entries),
    a second looks each entry's value up in the int32 table of R entries (in
    cache-sized chunks).  Extra memory: about 20·R bytes plus the chunk
    temporaries.
    """
    m = int(v.shape[0])
    span = kmax - kmin + 1
    counts = np.zeros(span, dtype=np.int64)
    step = max(_PASS, span)
    for i in range(0, m, step):
        idx = _sort_keys(v[i : i + step]).astype(np.intp)
        idx -= kmin
        counts += np.bincount(idx, minlength=span)
    doubled = np.cumsum(counts)
    doubled *= 2
    doubled -= counts
    doubled -= m
    del counts
    table = doubled.astype(np.int32)
    del doubled
    key = np.empty(min(m, _CHUNK), dtype=np.uint32)
    idx = np.empty(key.shape, dtype=np.intp)
    for i in range(0, m, _CHUNK):
        j = min(m, i + _CHUNK)
        _keys_into(v[i:j], key[: j - i])
        np.subtract(key[: j - i], kmin, out=idx[: j - i], dtype=np.intp)
        np.take(table, idx[: j - i], out=out[i:j])


def _sort_ranks(v: np.ndarray, group: int, out: np.ndarray) -> None:
    """Average ranks by sorting packed (key, position) words (see :func:`centred_ranks`)."""
    m = int(v.shape[0])
    if m <= group:
        packed = np.empty(m, dtype=np.uint64)
        keys, positions = _words(packed)
        for i in range(0, m, _CHUNK):
            j = min(m, i + _CHUNK)
            _keys_into(v[i:j], keys[i:j])
            positions[i:j] = np.arange(i, j, dtype=np.uint32)
        packed.sort()
        _rank_sorted(packed, 0, m, out)
        return
    hist = np.zeros(1 << 16, dtype=np.int64)
    for i in range(0, m, _PASS):
        hist += np.bincount(_sort_keys(v[i : i + _PASS]) >> np.uint32(16), minlength=1 << 16)
    below = np.concatenate(([0], np.cumsum(hist)))
    bounds = [0]
    while bounds[-1] < (1 << 16):
        lo = bounds[-1]
        hi = lo + 1
        while hi < (1 << 16) and below[hi + 1] - below[lo] <= group:
            hi += 1
        bounds.append(hi)
    sizes = [int(below[hi] - below[lo]) for lo, hi in zip(bounds[:-1], bounds[1:])]
    buffer = np.empty(max(sizes), dtype=np.uint64)  # reused by every group
    for lo, hi, size in zip(bounds[:-1], bounds[1:], sizes):
        if not size:
            continue
        packed = buffer[:size]
        keys, positions = _words(packed)
        filled = 0
        for i in range(0, m, _PASS):
            key = _sort_keys(v[i : i + _PASS])
            top = key >> np.uint32(16)
            sel = np.flatnonzero((top >= lo) & (top < hi))
            keys[filled : filled + sel.size] = key[sel]
            sel += i
            positions[filled : filled + sel.size] = sel
            filled += sel.size
        packed.sort()
        _rank_sorted(packed, int(below[lo]), m, out)
