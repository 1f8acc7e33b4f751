"""All-pairs comparisons of many representations: :func:`grid`.

::

    reps = {("mlp_seed0", "fc1"): A1, ("mlp_seed0", "fc2"): A2,
            ("mlp_seed1", "fc1"): B1, ("mlp_seed1", "fc2"): B2}
    table = repscope.grid(reps, measures=["cka", "procrustes"], db="results.sqlite")

Amortisation
------------
Every representation is prepared once per distinct :meth:`Measure.prepare_key`
and the prepared object is reused for all its pairs; measures are processed
one prepare-key group at a time, so memory holds one prepared copy of each
representation at a time.  Lazy arrays (anything with ``__array__`` and
``shape``, e.g. Zarr arrays from :mod:`repscope.store`) are read only when a
group that needs them is computed.

Cross terms are batched and shared (:class:`CrossMoments`).  A second-moment
measure (:class:`~repscope.measures._moment.MomentMeasure`) that takes the
feature path for a pair needs the centred cross product ``X̃ₐᵀX̃_b``
(n·dₐ·d_b flops, its main per-pair cost besides a d × d decomposition).  The
grid computes the cross products of one representation with all its partners
in one GEMM, ``X̃ₐᵀ [X̃_b₁ X̃_b₂ … X̃_bₖ]`` (the partners' centred columns
concatenated), and keeps them — within a memory budget — for every other
second-moment measure of the grid (CKA, HSIC, the CCA family, Procrustes and
shape metrics, NBS/Bures, regression R² all share one ``X̃ₐᵀX̃_b`` per pair and
precision); the reverse order of an asymmetric measure uses the transpose.
Quantities derived from a cross product that several measures need are
memoised per pair as well (:meth:`CrossMoments.memo`: the nuclear norm
``‖X̃ₐᵀX̃_b‖_*`` behind the Procrustes distances, NBS and Bures), and
per-representation factors (whitening for CCA and regression, PCA bases for
SVCCA/PWCCA, Gram matrices) are cached in the prepared objects.  A
pair for which the measure itself prefers the Gram path (n × n, cheaper when
n is small relative to d, see :meth:`MomentMeasure.use_gram`) is not batched:
its per-representation centred Gram matrix is cached in the prepared object and
the pair costs only O(n²).  The batched products multiply the cached centred
float64 copies of the partners, concatenated
(:meth:`MomentMeasure._compute_cross_many`), so every value equals the
single-pair call ``repscope.measure(name)(X, Y)`` to rounding (≈ 1e-15
relative; only a measure that is itself ill-conditioned at the input, e.g.
PWCCA with repeated canonical correlations, turns such rounding into a visible
change, as it would a change of BLAS threads); a batch that raises a warning or
error is discarded and the pair is computed on its own, so warnings and errors
land in the right row.  Products of the float32 mixed-precision path are
computed pair by pair (a float32 GEMM rounds differently when its operands are
concatenated) and only shared; with pairs evaluated in threads (``threads``)
the float32 GEMMs run one-threaded and may round differently from a
multi-threaded single-pair call (~1e-9 relative, within the mixed-precision
error of ~1e-7).

Execution
---------
``executor="local"`` (the default outside a Dask context) runs everything in
this process.  ``executor="dask"``, ``client=...`` or an active
:func:`repscope.distributed.dask_client` context runs the pair × measure tasks
on a Dask cluster (see :mod:`repscope.distributed`); rows are written by this
process as they arrive.  With a results database every finished row is
committed at once and rows already stored are skipped, so an interrupted grid
resumes where it stopped, whichever executor ran it.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ._array import Array, is_torch, namespace
from ._threads import available_cpus, single_threaded
from ._warning_capture import capture_warnings, route_warnings
from .comparison import (
    RECORDED_ERRORS,
    ResultTable,
    _check_on_error,
    _error_text,
    evaluate_prepared,
    resolve_measures,
    shared_prepare_key,
)
from .errors import InputShapeError, InvalidParameterError
from .measures._moment import MomentMeasure
from .measures.base import Measure, Prepared
from .results import ResultKey, ResultsDB, canonical_json
from .stats import Stats, progress_bar

__all__ = ["grid", "pair_list", "pair_threads", "RepKey", "CrossMoments", "EXECUTORS"]

#: a representation key: (model, layer)
RepKey = tuple[str, Any]

PAIR_MODES = ("cross", "within", "all")

#: ways to run a grid (``None`` = Dask inside :func:`repscope.distributed.dask_client`, else local)
EXECUTORS = ("local", "dask")

#: bytes of batched cross products kept for reuse by the other measures of a grid
CROSS_BUDGET = 512 * 2**20

#: bytes of memoised per-pair arrays (e.g. whitened cross matrices) kept for reuse
MEMO_BUDGET = 128 * 2**20

#: bytes of one concatenation of partner representations fed to a batched GEMM
CONCAT_BUDGET = 256 * 2**20


# ------------------------------------------------------------------ inputs
def _flatten(representations: Mapping[Any, Any]) -> dict[RepKey, Any]:
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


def _shape(a: Any) -> tuple[int, ...]:
    shape = getattr(a, "shape", None)
    if shape is None:
        shape = np.shape(np.asarray(a))
    return tuple(int(s) for s in shape)


def _check_sizes(reps: Mapping[RepKey, Any]) -> int:
    sizes: dict[int, list[RepKey]] = {}
    for key, a in reps.items():
        shape = _shape(a)
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


def _materialise(a: Any) -> Any:
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
class _Task:
    """One row to compute: measure ``m`` of the ordered pair ``(a, b)``, stored under ``key``."""

    __slots__ = ("a", "b", "m", "key")

    def __init__(self, a: RepKey, b: RepKey, m: Measure, key: ResultKey) -> None:
        self.a, self.b, self.m, self.key = a, b, m, key

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.a, self.b, self.m, self.key)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.a, self.b, self.m, self.key = state

    def __repr__(self) -> str:
        return f"_Task({self.a} x {self.b}: {self.m.info.name})"


def _row_for(task: _Task, row: Mapping[str, Any], dataset: str, seed: int,
             stats_json: str) -> dict[str, Any]:
    out = dict(row)
    out.update(dataset=dataset, model_a=task.a[0], layer_a=task.a[1], model_b=task.b[0],
               layer_b=task.b[1], seed=seed, stats=stats_json)
    return out


#: ``emit(task, row)`` receives each finished result row (measure columns only)
Emit = Callable[[_Task, dict[str, Any]], None]


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
        self._store: OrderedDict[tuple[RepKey, RepKey, int], Array] = OrderedDict()
        self._derived: OrderedDict[tuple[RepKey, RepKey, int, str], Any] = OrderedDict()
        self._derived_bytes = 0
        self._bytes = 0
        self._owner: dict[int, tuple[RepKey, Prepared]] = {}
        self._partners: dict[RepKey, list[RepKey]] = {}
        self._get: Callable[[RepKey], Any] | None = None
        self._lock = threading.RLock()
        self._pending: dict[tuple[RepKey, RepKey, int, str], threading.Event] = {}
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

    def _find(self, ka: RepKey, kb: RepKey, tag: int) -> Array | None:
        for k, transpose in (((ka, kb, tag), False), ((kb, ka, tag), True)):
            hit = self._store.get(k)
            if hit is not None:
                self._store.move_to_end(k)
                return hit.T if transpose else hit
        return None

    def memo(self, px: Prepared, py: Prepared, precision: int, name: str,
             compute: Callable[[], Any]) -> Any:
        """A per-pair quantity ``name`` of ``X̃ᵀỸ`` (same for the transposed pair), computed once.

        ``precision`` is 0 for float64 products, else the float32 block length.
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
                    block = m._compute_cross(pa, batch[0][1], mixed)
                else:
                    block = m._compute_cross_many(pa, [p for _, p in batch])
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

    def _keep(self, key: tuple[RepKey, RepKey, int, str], value: Any) -> None:
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

    def _put(self, key: tuple[RepKey, RepKey, int], value: Array) -> None:
        size = _nbytes(value)
        self._store[key] = value
        self._bytes += size
        self.pairs += 1
        while self._bytes > self.budget and len(self._store) > 1:
            _, old = self._store.popitem(last=False)
            self._bytes -= _nbytes(old)


def _precision_tag(m: MomentMeasure, p: Prepared, mixed: bool) -> int:
    """Key part of a cross product: 0 for float64, else the rows per float32 GEMM
    (``min(block, n)``: products summed over different blocks round differently and
    are not shared)."""
    return min(int(m.mixed_block), p.n) if mixed else 0


def _nbytes(a: Array) -> int:
    return int(a.numel() * a.element_size()) if is_torch(a) else int(a.nbytes)


def _itemsize(a: Array) -> int:
    return int(a.element_size()) if is_torch(a) else int(a.itemsize)


def _same_kind(a: Array, b: Array) -> bool:
    if is_torch(a) != is_torch(b) or a.dtype != b.dtype:
        return False
    return getattr(a, "device", None) == getattr(b, "device", None)


def _with_table(m: Measure, table: CrossMoments | None) -> Measure:
    """A copy of a second-moment measure whose cross products come from ``table`` first.

    Other measures are returned unchanged.
    """
    if table is None or not isinstance(m, MomentMeasure):
        return m
    w = copy.copy(m)
    w.cross_source = table.lookup
    w.pair_memo = table.memo
    return w


def _batch_partners(group: Sequence[_Task], widths: Mapping[RepKey, int],
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


# ------------------------------------------------------------------ execution
def group_tasks(tasks: Sequence[_Task]) -> list[list[_Task]]:
    """Tasks split by shared prepare key, groups and tasks in their original order."""
    groups: dict[Any, list[_Task]] = {}
    for t in tasks:
        groups.setdefault(shared_prepare_key(t.m), []).append(t)
    return list(groups.values())


def prepare_names(tasks: Sequence[_Task]) -> dict[ResultKey, tuple[str, str]]:
    """Per task, the names (``"X"``/``"Y"``) its representations are prepared under.

    A representation is prepared once per prepare-key group, under the role of
    its first appearance in the group (error messages name it so); a subset of
    the tasks computed elsewhere (a Dask block) uses these names to give the
    same rows.
    """
    out: dict[ResultKey, tuple[str, str]] = {}
    for group in group_tasks(tasks):
        role: dict[RepKey, str] = {}
        for t in group:
            role.setdefault(t.a, "X")
            role.setdefault(t.b, "Y")
        for t in group:
            out[t.key] = (role[t.a], role[t.b])
    return out


def run_tasks(
    tasks: Sequence[_Task],
    load: Callable[[RepKey], Any],
    widths: Mapping[RepKey, int],
    n: int,
    *,
    stats: Stats,
    seed: int,
    on_error: str,
    emit: Emit,
    table: CrossMoments | None = None,
    names: Mapping[ResultKey, tuple[str, str]] | None = None,
    threads: int = 1,
) -> None:
    """Compute ``tasks`` in this process, one prepare-key group at a time.

    ``load(key)`` returns a representation's array (read once per group);
    ``emit(task, row)`` receives each row, in task order, as soon as it and the
    rows before it are computed; ``table`` batches and shares cross products;
    ``names`` (default :func:`prepare_names` of ``tasks``) fixes the name each
    representation is prepared under; ``threads > 1`` evaluates the pairs of a
    group whose measures are all :attr:`~repscope.measures.base.Measure.thread_safe`
    in that many threads (see :func:`grid`).  Used by :func:`grid` and, on
    each worker, by :mod:`repscope.distributed`.
    """
    names = prepare_names(tasks) if names is None else names
    for group in group_tasks(tasks):
        k = threads if threads > 1 and all(t.m.thread_safe for t in group) else 1
        _run_group(group, load, widths, n, stats, seed, on_error, emit, table, names, k)


def _run_group(
    group: list[_Task],
    load: Callable[[RepKey], Any],
    widths: Mapping[RepKey, int],
    n: int,
    st: Stats,
    seed: int,
    on_error: str,
    emit: Emit,
    table: CrossMoments | None,
    names: Mapping[ResultKey, tuple[str, str]],
    threads: int = 1,
) -> None:
    """Compute one prepare-key group: each representation prepared once, reused by all pairs.

    With ``threads > 1`` the representations are prepared, then the pairs
    evaluated, by a pool of that many threads, each running one-threaded BLAS
    (small matrix problems do not speed up with more BLAS threads, but several
    of them run side by side); warnings are recorded per thread
    (:func:`repscope._warning_capture.route_warnings`).  Rows are the same as
    sequentially, to rounding (one-threaded BLAS sums in another order).
    """
    prepared: dict[RepKey, tuple[Prepared, list[str]] | str | BaseException] = {}
    origin: dict[RepKey, Any] = {}  # traceback of each preparation error
    preparer = group[0].m
    role: dict[RepKey, str] = {}
    for t in group:
        na, nb = names.get(t.key, ("X", "Y"))
        role.setdefault(t.a, na)
        role.setdefault(t.b, nb)

    def prepare(k: RepKey) -> tuple[Prepared, list[str]] | str | BaseException:
        try:
            with capture_warnings() as cw:
                p = preparer.prepare(load(k), role[k])
        except RECORDED_ERRORS as exc:
            # with on_error="raise" the error is raised by the first task that needs it
            return exc if on_error == "raise" else f"{k[0]}/{k[1]}: {_error_text(exc)}"
        if table is not None:
            table.register(k, p)
        return (p, cw.messages)

    def get(k: RepKey) -> tuple[Prepared, list[str]] | str:
        if k not in prepared:
            prepared[k] = prepare(k)
        entry = prepared[k]
        if isinstance(entry, BaseException):  # raised again by each task that needs it:
            raise entry.with_traceback(origin.setdefault(k, entry.__traceback__))  # keep one
        return entry

    def own_error(m: Measure, k: RepKey, shared: str) -> str:
        """The preparation error in ``m``'s own words (the group's preparer may be another
        measure of the same prepare key, whose name its message carries)."""
        if m is preparer or m.info.name == preparer.info.name:
            return shared
        try:
            m.prepare(load(k), role[k])
        except RECORDED_ERRORS as exc:
            return f"{k[0]}/{k[1]}: {_error_text(exc)}"
        return shared

    wrapped: dict[int, Measure] = {}
    for t in group:
        if id(t.m) not in wrapped:
            wrapped[id(t.m)] = _with_table(t.m, table)

    def evaluate(t: _Task) -> dict[str, Any]:
        ea, eb = get(t.a), get(t.b)
        t0 = time.perf_counter()
        if isinstance(ea, str) or isinstance(eb, str):
            errors = [own_error(t.m, k, e) for k, e in ((t.a, ea), (t.b, eb))
                      if isinstance(e, str)]
            return {
                "measure": t.m.info.name, "params": dict(t.m.params), "kind": t.m.info.kind,
                "n": t.key.n, "warnings": (), "error": "; ".join(errors),
                "seconds": time.perf_counter() - t0,
            }
        (pa, wa), (pb, wb) = ea, eb
        return evaluate_prepared(wrapped[id(t.m)], pa, pb, stats=st, seed=seed,
                                 warnings=[*wa, *wb], on_error=on_error)

    if table is not None:
        table.begin_group(_batch_partners(group, widths, n), get)
    try:
        if threads <= 1:
            for t in group:
                emit(t, evaluate(t))
            return
        keys = list(role)
        with single_threaded(), route_warnings(), \
                ThreadPoolExecutor(threads, thread_name_prefix="repscope-grid") as pool:
            try:
                for k, entry in zip(keys, pool.map(prepare, keys)):
                    prepared[k] = entry
                futures = {id(t): pool.submit(evaluate, t) for t in _spread(group)}
                for t in group:
                    emit(t, futures[id(t)].result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        if table is not None:
            table.end_group()


#: largest ``n · d_max²`` (flops of one cross product, halved) for which :func:`grid` runs
#: pairs in parallel threads by default; beyond it BLAS threads pay off within each pair
PAIR_THREADS_MAX_WORK = 2**31

#: largest n for which :func:`grid` runs pairs in parallel threads by default (n × n
#: matrices such as RDMs, one per thread at a time)
PAIR_THREADS_MAX_N = 16384


def pair_threads(reps: Mapping[RepKey, Any], n: int, widths: Mapping[RepKey, int],
                 threads: int | None = None) -> int:
    """Threads :func:`grid` evaluates pairs with (``threads`` checked, or the default).

    The default is one per CPU available to the process, at most 8, for NumPy
    inputs (torch tensors use torch's own threads or a GPU) when each pair is
    small — ``n · max(d)² ≤`` :data:`PAIR_THREADS_MAX_WORK` and
    ``n ≤`` :data:`PAIR_THREADS_MAX_N` — where one-threaded BLAS calls side
    by side beat one multi-threaded call at a time (eigen- and singular value
    problems of a few hundred columns gain nothing from more BLAS threads);
    else 1.
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise InvalidParameterError(f"threads must be a positive int or None, got {threads!r}")
        return int(threads)
    cpus = available_cpus()
    if cpus < 2 or len(reps) < 2 or any(is_torch(a) for a in reps.values()):
        return 1
    dmax = max(widths.values())
    if n > PAIR_THREADS_MAX_N or n * dmax * dmax > PAIR_THREADS_MAX_WORK:
        return 1
    return min(cpus, 8)


def _spread(group: Sequence[_Task]) -> list[_Task]:
    """The tasks of a group in an order where neighbours share no representation.

    Per measure, pairs go along the diagonals of the (first key × second key)
    table: ``(a₁,b₁), (a₂,b₂), …, (a₁,b₂), (a₂,b₃), …``, so threads that take
    consecutive tasks rarely wait for the same representation's cached factors.
    """
    index_a: dict[RepKey, int] = {}
    index_b: dict[RepKey, int] = {}
    index_m: dict[int, int] = {}
    for t in group:
        index_a.setdefault(t.a, len(index_a))
        index_b.setdefault(t.b, len(index_b))
        index_m.setdefault(id(t.m), len(index_m))
    nb = len(index_b)
    return sorted(group, key=lambda t: (index_m[id(t.m)], (index_b[t.b] - index_a[t.a]) % nb,
                                        index_a[t.a]))


def _resolve_client(executor: str | None, client: Any) -> Any:
    """The Dask client to run on, or ``None`` for in-process execution."""
    if executor is not None and executor not in EXECUTORS:
        raise InvalidParameterError(f"executor must be one of {EXECUTORS} or None, got "
                                    f"{executor!r}")
    if client is not None:
        if executor == "local":
            raise InvalidParameterError("client= runs the grid on Dask; drop executor='local'")
        return client
    if executor == "local":
        return None
    from . import distributed

    if executor == "dask":
        return distributed.current_client(required=True)
    return distributed.active_client()


def grid(
    representations: Mapping[Any, Any],
    measures: Any = None,
    *,
    stats: Any = None,
    pairs: Any = "cross",
    db: ResultsDB | str | Path | None = None,
    dataset: str = "",
    seed: int = 0,
    on_error: str = "record",
    retry_errors: bool = False,
    progress: bool = False,
    executor: str | None = None,
    client: Any = None,
    chunk_rows: int | None = None,
    threads: int | None = None,
) -> ResultTable:
    """Compare every pair of representations with every measure.

    Parameters
    ----------
    representations : mapping
        ``{(model, layer): array}`` or ``{model: {layer: array}}``; arrays are
        (n, d) with the same n and the same row order (NumPy, torch, or lazy
        arrays with ``shape`` and ``__array__``).  Layers are ``str`` or ``int``.
    measures : see :func:`repscope.comparison.resolve_measures`.
    stats : see :meth:`repscope.stats.Stats.parse`.
    pairs : ``"cross"`` (default: layers of different models), ``"within"``
        (layer pairs inside each model), ``"all"``, or a list of
        ``(key_a, key_b)``.  Asymmetric measures are computed in both orders.
    db : :class:`~repscope.results.ResultsDB` or a path; rows are written as
        they finish and rows already stored are skipped.
    dataset : name of the inputs, part of each row's key.
    seed : seed of every resampling statistic (recorded per row).
    on_error : ``"record"`` (a failing measure gets an ``error`` row) or ``"raise"``.
    retry_errors : recompute stored rows that hold an error.
    progress : show a progress bar.
    executor : ``None`` (default: Dask inside a
        :func:`repscope.distributed.dask_client` context, else in-process),
        ``"local"`` or ``"dask"`` (the client of that context, else Dask's
        default client).
    client : a ``distributed.Client`` to run on (implies ``executor="dask"``).
    chunk_rows : rows per chunk when Dask workers accumulate second moments
        (default: about 64 MiB of float64 per chunk, aligned to Zarr chunks).
    threads : in-process execution only: evaluate this many pairs at once in
        threads, each with one-threaded BLAS (used for groups of thread-safe
        measures: second-moment measures and RSA).  Default ``None``: one per
        CPU available to this process (at most 8) when the inputs are NumPy
        arrays and every pair is small (:func:`pair_threads`), else 1, i.e.
        every pair in turn with multi-threaded BLAS.

    Returns
    -------
    ResultTable
        Every requested row (computed now or read from ``db``), with the pair
        columns ``dataset, model_a, layer_a, model_b, layer_b`` first.
    """
    _check_on_error(on_error)
    if not isinstance(dataset, str):
        raise InvalidParameterError(f"dataset must be a str, got {dataset!r}")
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or not isinstance(
            chunk_rows, (int, np.integer)) or chunk_rows < 1):
        raise InvalidParameterError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    reps = _flatten(representations)
    n = _check_sizes(reps)
    ms = resolve_measures(measures)
    st = Stats.parse(stats)
    stats_json = canonical_json(st.as_key())
    seed = int(seed)
    plist = pair_list(list(reps), pairs)
    dask_client = _resolve_client(executor, client)
    widths = {k: _shape(a)[1] for k, a in reps.items()}
    n_threads = pair_threads(reps, n, widths, threads)

    own_db = db is not None and not isinstance(db, ResultsDB)
    database: ResultsDB | None = ResultsDB(db) if own_db else db  # type: ignore[arg-type]
    try:
        done = (database.done_keys(include_errors=not retry_errors)
                if database is not None else set())
        tasks: list[_Task] = []
        all_keys: list[ResultKey] = []
        seen: set[ResultKey] = set()
        for m in ms:
            orders = plist if m.info.symmetric else [o for a, b in plist for o in ((a, b), (b, a))]
            params_json = canonical_json(m.params)
            for a, b in orders:
                key = ResultKey.make(a[0], a[1], b[0], b[1], m.info.name, params=params_json,
                                     stats=stats_json, n=n, seed=seed, dataset=dataset)
                if key in seen:  # the same measure listed twice
                    continue
                seen.add(key)
                all_keys.append(key)
                if key not in done:
                    tasks.append(_Task(a, b, m, key))
        computed: dict[ResultKey, dict[str, Any]] = {}
        with progress_bar(len(tasks), "grid", progress) as advance:

            def emit(task: _Task, row: dict[str, Any]) -> None:
                full = _row_for(task, row, dataset, seed, stats_json)
                if database is not None:
                    db_row = {c: full.get(c) for c in full if c not in ("params",)}
                    db_row["params"] = task.key.params
                    database.insert(db_row, replace=retry_errors)
                computed[task.key] = full
                advance(1)

            if tasks and dask_client is not None:
                from .distributed import run_grid_tasks

                run_grid_tasks(dask_client, tasks, reps, n, stats=st, seed=seed,
                               on_error=on_error, emit=emit, chunk_rows=chunk_rows)
            elif tasks:
                run_tasks(tasks, lambda k: _materialise(reps[k]), widths, n, stats=st,
                          seed=seed, on_error=on_error, emit=emit, table=CrossMoments(),
                          threads=n_threads)
        if database is not None:  # uniform rows (versions, run_id, timestamp) for old and new
            stored: dict[ResultKey, dict[str, Any]] = {}
            for r in database.rows(dataset=dataset, stats=stats_json, n=n, seed=seed):
                stored[ResultKey(*(r[c] for c in ResultKey._fields))] = r
            rows = [stored[k] for k in all_keys if k in stored]
            for r in rows:
                r["params"] = json.loads(r["params"])
                r["warnings"] = tuple(r["warnings"])
        else:
            rows = [computed[k] for k in all_keys if k in computed]
    finally:
        if own_db and database is not None:
            database.close()
    return ResultTable(rows)
