"""Batched, shared centred cross products ``X̃ₐᵀX̃_b`` for the second-moment measures of a grid.

See :class:`CrossMoments` and the "Amortisation" notes of :mod:`repscope.engine.grid`.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from repscope.core.arrays import Array, is_torch, namespace
from repscope.core.warning_capture import capture_warnings
from repscope.engine.compare import (
    RECORDED_ERRORS,
)
from repscope.engine.tasks import (
    RepKey,
    Task,
)
from repscope.measures.base import Measure, Prepared
from repscope.measures.moment_measure import MomentMeasure

#: what a cross product's numbers depend on besides the pair (see :func:`_precision_tag`)
Tag = tuple[int, bool]

#: bytes of batched cross products kept for reuse by the other measures of a grid
CROSS_BUDGET = 512 * 2**20

#: bytes of memoised per-pair arrays (e.g. whitened cross matrices) kept for reuse
MEMO_BUDGET = 128 * 2**20

#: bytes of one concatenation of partner representations fed to a batched GEMM
CONCAT_BUDGET = 256 * 2**20


# ------------------------------------------------------- batched cross terms
class CrossMoments:
    """Centred cross products ``X̃ₐᵀX̃_b`` computed in batches and shared across measures.

    Filled lazily: the first request of a pair ``(a, b)`` by a second-moment
    measure computes ``X̃ₐᵀ [X̃_b …]`` for ``b`` and the other partners of ``a``
    not computed yet in one GEMM (columns limited by :data:`CONCAT_BUDGET`),
    from the partners' cached centred copies, concatenated.
    Entries are keyed by ``(a, b, mixed)`` (``mixed``: float32 GEMMs of the
    mixed-precision path) and kept, least recently used first out, while they
    fit in ``budget`` bytes, so the other measures of the grid reuse them.
    Mixed-precision products are computed one pair at a time (a float32 GEMM
    rounds differently when its operand is a concatenation) and only shared.

    Parameters
    ----------
    budget : bytes of cross products to keep (default :data:`CROSS_BUDGET`).

    Thread-safe: :func:`grid` evaluates pairs in parallel threads; a product or
    memoised quantity requested by two threads at once is computed once.

    Attributes
    ----------
    gemms : number of batched GEMMs run; ``pairs`` the number of cross
        products they produced (``pairs / gemms`` is the batching factor).
    """

    def __init__(self, budget: int = CROSS_BUDGET) -> None:
        self.budget = int(budget)
        self._store: OrderedDict[tuple[RepKey, RepKey, Tag], Array] = OrderedDict()
        self._derived: OrderedDict[tuple[RepKey, RepKey, Tag, str], Any] = OrderedDict()
        self._derived_bytes = 0
        self._bytes = 0
        self._owner: dict[int, tuple[RepKey, Prepared]] = {}
        self._partners: dict[RepKey, list[RepKey]] = {}
        self._get: Callable[[RepKey], Any] | None = None
        self._lock = threading.RLock()
        self._pending: dict[tuple[RepKey, RepKey, Tag, str], threading.Event] = {}
        self._filling: dict[RepKey, threading.Event] = {}
        self.gemms = 0
        self.pairs = 0

    # ------------------------------------------------------------ groups
    def begin_group(self, partners: Mapping[RepKey, list[RepKey]],
                    get: Callable[[RepKey], Any]) -> None:
        """Start a prepare-key group: its batching partners and its preparer.

        ``get(key)`` returns ``(Prepared, warnings)`` or an error string.
        """
        self._owner = {}
        self._partners = {k: list(v) for k, v in partners.items()}
        self._get = get

    def register(self, key: RepKey, p: Prepared) -> None:
        with self._lock:
            self._owner[id(p)] = (key, p)

    def end_group(self) -> None:
        self._owner, self._partners, self._get = {}, {}, None

    def __len__(self) -> int:
        return len(self._store)

    # ------------------------------------------------------------ lookups
    def _key(self, p: Prepared) -> RepKey | None:
        hit = self._owner.get(id(p))
        return hit[0] if hit is not None and hit[1] is p else None

    def _find(self, ka: RepKey, kb: RepKey, tag: Tag) -> Array | None:
        for k, transpose in (((ka, kb, tag), False), ((kb, ka, tag), True)):
            hit = self._store.get(k)
            if hit is not None:
                self._store.move_to_end(k)
                return hit.T if transpose else hit
        return None

    def memo(self, px: Prepared, py: Prepared, precision: Tag, name: str,
             compute: Callable[[], Any]) -> Any:
        """A per-pair quantity ``name`` of ``X̃ᵀỸ`` (same for the transposed pair), computed once.

        ``precision`` is ``(0 for float64 products, else the float32 block length;
        whether the measure's inputs are at unit scale)``.
        Shared across the measures of the grid like the cross products; pairs of
        unregistered prepared objects are computed directly.  Scalars are kept
        for the whole grid, arrays (least recently used first out) while they fit
        in :data:`MEMO_BUDGET` bytes.
        """
        ka, kb = self._key(px), self._key(py)
        if ka is None or kb is None:
            return compute()
        keys = ((ka, kb, precision, name), (kb, ka, precision, name))
        while True:
            with self._lock:
                for key in keys:
                    if key in self._derived:
                        self._derived.move_to_end(key)
                        return self._derived[key]
                busy = self._pending.get(keys[0]) or self._pending.get(keys[1])
                if busy is None:  # this thread computes it
                    done = self._pending[keys[0]] = threading.Event()
                    break
            busy.wait()  # another thread computes it: use its value (or retry if it failed)
        try:
            value = compute()
            with self._lock:
                self._keep(keys[0], value)
            return value
        finally:
            with self._lock:
                del self._pending[keys[0]]
            done.set()

    def lookup(self, m: MomentMeasure, px: Prepared, py: Prepared, mixed: bool) -> Array | None:
        """``X̃ᵀỸ`` of two registered prepared representations, or ``None`` (compute it directly)."""
        ka, kb = self._key(px), self._key(py)
        if ka is None or kb is None:
            return None
        tag = _precision_tag(m, px, mixed)
        while True:
            with self._lock:
                hit = self._find(ka, kb, tag)
                if hit is not None:
                    return hit
                busy = self._filling.get(ka)
                if busy is None:  # this thread computes the next batch of ka's products
                    plan = self._plan(m, ka, kb, mixed)
                    if plan is None:
                        return None
                    done = self._filling[ka] = threading.Event()
                    break
            busy.wait()  # another thread is computing a batch of ka's products: look again
        try:
            self._compute(m, ka, plan[0], plan[1], mixed)
        finally:
            with self._lock:
                del self._filling[ka]
            done.set()
        with self._lock:
            return self._find(ka, kb, tag)

    # ------------------------------------------------------------ batches
    def _prepared(self, k: RepKey) -> Prepared | None:
        if self._get is None:
            return None
        try:
            entry = self._get(k)
        except RECORDED_ERRORS:  # on_error="raise": raised again when its own task runs
            return None
        return None if isinstance(entry, str) else entry[0]

    def _plan(self, m: MomentMeasure, ka: RepKey, kb: RepKey, mixed: bool
              ) -> tuple[Prepared, list[tuple[RepKey, Prepared]]] | None:
        """The batch that computes ``(ka, kb)``: ``kb`` and ka's other partners not yet
        computed, within the budgets (``None``: compute the pair directly)."""
        partners = self._partners.get(ka, [])
        if kb not in partners:
            return None
        pa, pb = self._prepared(ka), self._prepared(kb)
        if pa is None or pb is None:
            return None
        n = pa.n
        itemsize = _itemsize(pb.data)
        cols_cap = max(1, CONCAT_BUDGET // max(1, n * itemsize))
        bytes_cap = max(1, self.budget // 2)
        da = int(pa.data.shape[1])
        batch: list[tuple[RepKey, Prepared]] = []
        cols = 0
        for k in [kb, *(k for k in partners if k != kb)]:
            if batch and mixed:  # float32 GEMMs: batching would change the rounding
                break
            if batch and self._find(ka, k, _precision_tag(m, pa, mixed)) is not None:
                continue
            p = pb if k == kb else self._prepared(k)
            if p is None or not _same_kind(p.data, pb.data):
                continue
            d = int(p.data.shape[1])
            if batch and (cols + d > cols_cap or 8 * da * (cols + d) > bytes_cap):
                break
            batch.append((k, p))
            cols += d
        return pa, batch

    def _compute(self, m: MomentMeasure, ka: RepKey, pa: Prepared,
                 batch: list[tuple[RepKey, Prepared]], mixed: bool) -> None:
        xp = namespace(pa.data)
        with capture_warnings() as caught:
            try:
                if len(batch) == 1:
                    block = m.compute_cross(pa, batch[0][1], mixed)
                else:
                    block = m.compute_cross_many(pa, [p for _, p in batch])
            except RECORDED_ERRORS:
                return
        if caught.messages:  # let each pair raise (and record) its own warning
            return
        tag = _precision_tag(m, pa, mixed)
        parts = [(batch[0][0], block)] if len(batch) == 1 else []
        off = 0
        for k, p in batch if len(batch) > 1 else ():
            d = int(p.data.shape[1])
            parts.append((k, xp.asarray(block[:, off:off + d], copy=True)))
            off += d
        with self._lock:
            self.gemms += 1
            for k, value in parts:
                self._put((ka, k, tag), value)

    def _keep(self, key: tuple[RepKey, RepKey, Tag, str], value: Any) -> None:
        """Store a memoised value; evict the oldest arrays beyond :data:`MEMO_BUDGET`."""
        self._derived[key] = value
        shape = getattr(value, "shape", ())
        if not shape:
            return
        self._derived_bytes += _nbytes(value)
        if self._derived_bytes <= MEMO_BUDGET:
            return
        for old in list(self._derived):
            if self._derived_bytes <= MEMO_BUDGET or old == key:
                break
            dropped = self._derived[old]
            if getattr(dropped, "shape", ()):
                del self._derived[old]
                self._derived_bytes -= _nbytes(dropped)

    def _put(self, key: tuple[RepKey, RepKey, Tag], value: Array) -> None:
        size = _nbytes(value)
        self._store[key] = value
        self._bytes += size
        self.pairs += 1
        while self._bytes > self.budget and len(self._store) > 1:
            _, old = self._store.popitem(last=False)
            self._bytes -= _nbytes(old)


def _precision_tag(m: MomentMeasure, p: Prepared, mixed: bool) -> Tag:
    """Key part of a cross product: ``(0 for float64, else the rows per float32 GEMM,
    whether the measure brings its inputs to unit scale)``.  Products summed over
    different blocks round differently, and products of unit-scaled data differ from
    those in the data's units (:attr:`Measure.normalises`): neither is shared."""
    return (min(int(m.mixed_block), p.n) if mixed else 0, m.normalises)


def _nbytes(a: Array) -> int:
    return int(a.numel() * a.element_size()) if is_torch(a) else int(a.nbytes)


def _itemsize(a: Array) -> int:
    return int(a.element_size()) if is_torch(a) else int(a.itemsize)


def _same_kind(a: Array, b: Array) -> bool:
    if is_torch(a) != is_torch(b) or a.dtype != b.dtype:
        return False
    return getattr(a, "device", None) == getattr(b, "device", None)


def with_table(m: Measure, table: CrossMoments | None) -> Measure:
    """A copy of a second-moment measure whose cross products come from ``table`` first.

    Other measures are returned unchanged.
    """
    if table is None or not isinstance(m, MomentMeasure):
        return m
    w = copy.copy(m)
    w.cross_source = table.lookup
    w.pair_memo = table.memo
    return w


def batch_partners(group: Sequence[Task], widths: Mapping[RepKey, int],
                    n: int) -> dict[RepKey, list[RepKey]]:
    """Per first representation, the partners whose cross product a measure will request."""
    out: dict[RepKey, list[RepKey]] = {}
    for t in group:
        if not isinstance(t.m, MomentMeasure):
            continue
        if t.m.use_gram(n, widths[t.a], widths[t.b]):
            continue
        lst = out.setdefault(t.a, [])
        if t.b not in lst:
            lst.append(t.b)
    return out
