"""The :class:`Measure` base class shared by every registered measure.

A measure is a small object configured by keyword parameters and called on a
pair of representations::

    m = repscope.measure("cka", kernel="rbf")
    m(X, Y)              # -> Python float
    m.compute(X, Y)      # -> 0-d backend scalar (differentiable for torch input)

For reuse across many pairs, :meth:`Measure.prepare` turns one representation
into a cached object (centred data, a Gram matrix, an RDM, neighbour lists) and
:meth:`Measure.compare_prepared` compares two prepared objects.  Measures with
the same :meth:`prepare_key` share prepared objects.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from repscope.core.arrays import Array, is_torch, namespace, to_float, to_numpy
from repscope.core.errors import (
    InputShapeError,
    InsufficientSamplesError,
    InvalidParameterError,
    NonFiniteResultError,
    NumericalError,
    RepscopeError,
)
from repscope.core.linalg import centred_rank_at_most_one
from repscope.core.memory import parse_memory
from repscope.core.validation import (
    as_representation,
    check_magnitude,
    check_not_constant,
    input_epsilon,
    unit_scale,
    warn_degenerate,
)
from repscope.measures.metadata import Invariance, MeasureInfo
from repscope.measures.planning import REQUESTS, Estimate, Plan, choose_path, shape_of

__all__ = ["Measure", "Prepared", "numerical_errors"]


def _numerical_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions of numerical libraries that a measure turns into :class:`NumericalError`.

    NumPy's ``LinAlgError`` and SciPy's errors are ``ValueError``s; float errors are
    ``ArithmeticError``s; torch's ``LinAlgError`` is a ``RuntimeError`` (added only
    when torch is already imported: other ``RuntimeError``s, e.g. out of memory, pass).
    """
    out: list[type[BaseException]] = [ValueError, ArithmeticError]
    torch = sys.modules.get("torch")
    linalg_error = getattr(getattr(torch, "linalg", None), "LinAlgError", None)
    if isinstance(linalg_error, type):
        out.append(linalg_error)
    return tuple(out)


@contextmanager
def numerical_errors(measure: str, stage: str) -> Iterator[None]:
    """Re-raise an exception of a numerical library as :class:`NumericalError`.

    The message names the measure, the stage (``"preparing X"``, ``"comparing"``)
    and the cause; :class:`RepscopeError` passes unchanged.
    """
    try:
        yield
    except RepscopeError:
        raise
    except _numerical_exceptions() as exc:
        raise NumericalError(
            f"{measure}: a numerical routine failed while {stage} "
            f"({type(exc).__name__}: {exc}); the input is numerically degenerate for this "
            "measure (e.g. collinear or duplicated samples, or values at the limits of float64)"
        ) from exc


class Prepared:
    """A representation prepared once for one kind of comparison.

    Attributes
    ----------
    data : the validated float64 representation (backend array).
    n : number of samples.
    cache : measure-specific derived quantities (Gram matrix, RDM, ranks...).

    Derived quantities are added with :meth:`cached`, which computes each one
    once even when several threads ask for it together (:func:`repscope.grid`
    evaluates pairs in parallel threads).
    """

    __slots__ = ("data", "n", "cache", "_lock")

    def __init__(self, data: Array, cache: dict[str, Any] | None = None) -> None:
        self.data = data
        self.n = int(data.shape[0])
        self.cache = {} if cache is None else cache
        self._lock = threading.RLock()

    def cached(self, name: str, compute: Callable[[], Any]) -> Any:
        """``cache[name]``, computed by ``compute()`` on first use (once across threads).

        ``compute`` may itself call :meth:`cached` of the same object (the lock
        is re-entrant); a result of ``None`` is cached too, an exception is not.
        """
        cache = self.cache
        if name in cache:
            return cache[name]
        with self._lock:
            if name not in cache:
                cache[name] = compute()
            return cache[name]

    def __getstate__(self) -> tuple[Array, dict[str, Any]]:
        return (self.data, self.cache)

    def __setstate__(self, state: tuple[Array, dict[str, Any]]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Prepared(n={self.n}, d={int(self.data.shape[1])}, cache={sorted(self.cache)})"


class Measure:
    """Base class: subclass it, set ``info`` and implement :meth:`_compare`.

    Subclasses implement ``_compare(self, px, py) -> scalar`` on
    :class:`Prepared` inputs and may override :meth:`_prepare` to add cached
    quantities to ``Prepared.cache``.  Parameter validation goes in
    :meth:`_check_params`.
    """

    info: ClassVar[MeasureInfo]
    #: whether each representation must vary across samples
    requires_variance: ClassVar[bool] = True
    #: whether :func:`repscope.grid` may evaluate several pairs of this measure in parallel
    #: threads: its computations use only re-entrant code, add to ``Prepared.cache`` only
    #: through :meth:`Prepared.cached`, and record warnings only with
    #: :class:`repscope.core.warning_capture.capture_warnings`
    thread_safe: ClassVar[bool] = False
    #: whether the measure's population value is a fixed property of the input
    #: distribution, so that confidence intervals may correct the plug-in value's
    #: small-sample bias (``False`` for fixed-k neighbourhood measures: their
    #: neighbourhoods shrink as n grows, and their estimand is the value expected at n)
    bias_correctable: ClassVar[bool] = True
    #: whether :meth:`prepare` warns (:class:`~repscope.DegeneracyWarning`) when the
    #: centred representation has rank <= 1 (its samples lie on one line), for
    #: measures of representations; measures of per-representation summaries opt out
    warns_rank_one: ClassVar[bool] = True
    #: modelled bytes per pair of samples of the exact in-memory path (its n × n matrices)
    pair_bytes: ClassVar[float] = 32.0
    #: whether the measure has an estimated path (:meth:`_estimated`)
    estimable: ClassVar[bool] = False
    #: the memory budget (bytes, a string such as ``"4GiB"``, or None: the default)
    memory: Any = None
    #: the path asked for: ``"auto"`` (the plan decides) or one of the planned paths
    path: str = "auto"

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.info.params))
        if unknown:
            allowed = ", ".join(sorted(self.info.params)) or "none"
            raise InvalidParameterError(
                f"{self.info.name}: unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}"
            )
        self.params: dict[str, Any] = {**self.info.params, **params}
        self._check_params()

    # ------------------------------------------------------------------ API
    @property
    def backend(self) -> str:
        """``"array_api"`` or ``"numpy"`` for this configured instance (default: ``info``)."""
        return self.info.backend

    @property
    def differentiable(self) -> bool:
        """Whether gradients flow through torch inputs for this configured instance."""
        return self.info.differentiable

    @property
    def invariances(self) -> frozenset[Invariance]:
        """Invariances of this configured instance (may be more than ``info`` for some params)."""
        return self.info.invariances

    @property
    def min_samples(self) -> int:
        """Smallest n this configured instance accepts (``info.min_samples`` unless a
        parameter needs more, e.g. an unbiased estimator)."""
        return self.info.min_samples

    @property
    def min_samples_reason(self) -> str:
        """Why this configured instance refuses fewer than :attr:`min_samples` samples."""
        return self.info.min_samples_reason

    @property
    def normalises(self) -> bool:
        """Whether :meth:`prepare` brings each representation to unit scale.

        True for instances invariant to isotropic scaling: each representation
        is multiplied by a power of two (exact) that brings its largest
        magnitude into [1/2, 1) (:func:`repscope.core.validation.unit_scale`),
        so the value is the same at any scale and no product overflows or
        underflows.  Other instances accept only the magnitudes in
        ``info.magnitude_range`` and raise outside it.
        """
        return Invariance.ISOTROPIC_SCALING in self.invariances

    def __call__(self, X: Any, Y: Any) -> float:
        """Compute the measure and return a Python float (raises instead of NaN)."""
        return to_float(self.compute(X, Y))

    def compute(self, X: Any, Y: Any) -> Array:
        """Compute the measure; returns a 0-d float64 array in the input's backend.

        Within the memory budget (:meth:`plan`) this is the exact in-memory path;
        otherwise the value of the blocked or estimated path (:meth:`estimate`).
        """
        plan = self.plan_for(X, Y)
        if plan is None or plan.path == "exact":
            px, py = self.prepare(X, "X"), self.prepare(Y, "Y")
            return self.compare_prepared(px, py)
        import numpy as np

        return np.asarray(self.run_plan(X, Y, plan).value, dtype=np.float64)

    # ------------------------------------------------------------- planning
    def configure(self, *, memory: Any = None, path: str = "auto") -> Measure:
        """Set this instance's memory budget and path request; returns ``self``."""
        if path not in REQUESTS:
            raise InvalidParameterError(f"path must be one of {REQUESTS}, got {path!r}")
        if memory is not None:
            parse_memory(memory)  # reject a malformed budget now
        self.memory, self.path = memory, path
        return self

    def exact_bytes(self, n: int, dx: int, dy: int) -> float:
        """Modelled peak bytes of the exact in-memory path (default: two float64 copies of
        each input and :attr:`pair_bytes` per pair of samples)."""
        return 16.0 * n * (dx + dy) + self.pair_bytes * float(n) * n

    def blocked_bytes(self, n: int, dx: int, dy: int) -> float | None:
        """Modelled peak bytes of the exact blocked path; None where the measure has none."""
        return None

    def estimate_bytes(self, n: int, dx: int, dy: int) -> float | None:
        """Smallest modelled peak of the estimated path; None where the measure has none."""
        return None

    def plan(self, n: int, dx: int, dy: int, memory: Any = None, path: str | None = None
             ) -> Plan:
        """The path this measure takes for ``(n, dx, dy)`` within the budget.

        ``memory`` and ``path`` default to the instance's (:meth:`configure`).  Raises
        :class:`~repscope.core.errors.MemoryBudgetError`, before anything is allocated,
        when no path fits, naming the largest n the exact paths handle.
        """
        budget = parse_memory(self.memory if memory is None else memory)
        return choose_path(self, n, dx, dy, budget, self.path if path is None else path)

    def plan_for(self, X: Any, Y: Any, memory: Any = None, path: str | None = None
                 ) -> Plan | None:
        """:meth:`plan` for the shapes of ``X`` and ``Y`` (None where they are not a pair of
        2-D or 1-D arrays of equal length: the exact path then raises the shape error)."""
        try:
            (n, dx), (ny, dy) = shape_of(X), shape_of(Y)
        except (RepscopeError, TypeError, ValueError):
            return None
        if n != ny:
            return None
        return self.plan(n, dx, dy, memory, path)

    def estimate(self, X: Any, Y: Any, *, memory: Any = None, path: str | None = None,
                 seed: int = 0, level: float = 0.95) -> Estimate:
        """The value on the planned path, with the path taken and (when estimated) its
        confidence interval at ``level``, from subsets or sampled queries drawn with ``seed``."""
        plan = self.plan_for(X, Y, memory, path)
        return self.run_plan(X, Y, plan, seed=seed, level=level)

    def run_plan(self, X: Any, Y: Any, plan: Plan | None, *, seed: int = 0,
                 level: float = 0.95) -> Estimate:
        """Run ``plan`` (None or ``"exact"``: the in-memory path)."""
        if plan is None or plan.path == "exact":
            px, py = self.prepare(X, "X"), self.prepare(Y, "Y")
            return Estimate(to_float(self.compare_prepared(px, py)), "exact")
        with numerical_errors(self.info.name, f"comparing X and Y ({plan.path})"):
            if plan.path == "exact-blocked":
                est = self._blocked(X, Y, plan)
            else:
                est = self._estimated(X, Y, plan, seed, level)
        if not math.isfinite(est.value):
            raise NonFiniteResultError(
                f"{self.info.name} produced a non-finite value ({est.value}) on its "
                f"{plan.path} path; the inputs are degenerate for this measure")
        return est

    def _blocked(self, X: Any, Y: Any, plan: Plan) -> Estimate:  # pragma: no cover - abstract
        raise NotImplementedError

    def _estimated(self, X: Any, Y: Any, plan: Plan, seed: int, level: float
                   ) -> Estimate:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, X: Any, name: str = "X") -> Prepared:
        """Validate one representation and precompute what comparisons reuse.

        Checks the input (:func:`~repscope.core.validation.as_representation`),
        brings it to unit scale or checks its magnitude (:attr:`normalises`),
        checks that it varies and warns when its centred rank is <= 1
        (:meth:`entry`), then fills the cache (``_prepare``).  An exception of
        a numerical library raised meanwhile becomes a :class:`NumericalError`.
        """
        eps = input_epsilon(X)
        x = self.validated(X, name)
        if self.backend == "numpy" and is_torch(x):
            x = to_numpy(x)
        p = Prepared(self.entry(x, name, eps))
        with numerical_errors(self.info.name, f"preparing {name}"):
            self._prepare(p)
        return p

    def validated(self, X: Any, name: str, *, cast: bool = True) -> Array:
        """:func:`~repscope.core.validation.as_representation` plus this instance's
        minimum number of samples (:attr:`min_samples`), refused with its reason."""
        x = as_representation(X, name, cast=cast)
        n = int(x.shape[0])
        if n < self.min_samples:
            why = f": {self.min_samples_reason}" if self.min_samples_reason else ""
            raise InsufficientSamplesError(
                f"{name} has {n} samples; {self.info.name} needs at least {self.min_samples}"
                f"{why}"
            )
        return x

    def entry(self, x: Array, name: str, eps: float | None = None) -> Array:
        """The checks and the scaling every validated representation goes through.

        Scale-invariant instances (:attr:`normalises`) get ``x`` at unit scale
        (an exact power of two); the others get ``x`` itself after
        :func:`~repscope.core.validation.check_magnitude` against
        ``info.magnitude_range``.  Then: not constant (``requires_variance``),
        and a :class:`~repscope.DegeneracyWarning` when the centred rows span at
        most one direction (``warns_rank_one``, representations of width >= 2) up
        to the rounding ``eps`` of the input's precision (default: ``x``'s dtype).
        """
        if self.normalises:
            x, _ = unit_scale(x)
        else:
            check_magnitude(x, name, self.info.name, self.info.magnitude_range)
        if self.requires_variance:
            check_not_constant(x, name, self.info.name)
        if (self.warns_rank_one and self.info.input_kind == "representation"
                and int(x.shape[1]) >= 2 and centred_rank_at_most_one(x, eps)):
            warn_degenerate(
                f"{self.info.name}: the centred rows of {name} span at most one direction "
                f"(rank <= 1, n = {int(x.shape[0])}): every sample lies on one line, and "
                "comparisons of such a geometry are degenerate (any two lines align)",
                stacklevel=4,
            )
        return x

    def compare_prepared(self, px: Prepared, py: Prepared) -> Array:
        """Compare two prepared representations (same samples, same order)."""
        if px.n != py.n:
            raise InputShapeError(
                f"X and Y must have the same number of samples (rows), got {px.n} and {py.n}; "
                "rows must correspond to the same inputs"
            )
        if is_torch(px.data) != is_torch(py.data):
            raise InputShapeError(
                "X and Y must both be NumPy arrays or both torch tensors; convert one explicitly"
            )
        if px.n < self.min_samples:
            raise InsufficientSamplesError(
                f"X and Y have {px.n} samples; {self.info.name} with {self.params} needs at "
                f"least {self.min_samples}: {self.min_samples_reason}"
            )
        self._check_widths(px, py)
        with numerical_errors(self.info.name, "comparing X and Y"):
            value = self._compare(px, py)
            return self._finalize(value, px.data)

    def tie_resolution(self, n: int) -> float:
        """How far one flipped tie can move the value at ``n`` samples (0: a continuous measure).

        Rounding that breaks a tie between two equal-looking distances the other
        way (e.g. inputs scaled by a power of ten) can move a neighbourhood
        measure by one neighbour, ``1/(n·k)``; continuous measures move by
        rounding only.  :func:`repscope.testing.check_measure` allows this much.
        """
        return 0.0

    @classmethod
    def example_params(cls, n: int, rng: Any) -> dict[str, Any]:
        """Parameters the conformance suite must pass for ``n`` samples (e.g. labels)."""
        return {}

    def prepare_key(self) -> tuple[Any, ...]:
        """Measures returning equal keys can share :class:`Prepared` objects."""
        return (type(self).__name__, tuple(sorted(self.params.items(), key=lambda kv: kv[0])))

    # ---------------------------------------------------------- subclassing
    def _check_widths(self, px: Prepared, py: Prepared) -> None:
        """Raise :class:`InputShapeError` when ``same_dim`` and the widths differ."""
        if self.info.same_dim and px.data.shape[1] != py.data.shape[1]:
            raise InputShapeError(
                f"{self.info.name} needs X and Y of equal width, got "
                f"{px.data.shape[1]} and {py.data.shape[1]}"
            )

    def _check_params(self) -> None:
        """Validate ``self.params``; raise :class:`InvalidParameterError`."""

    def _prepare(self, p: Prepared) -> None:
        """Fill ``p.cache``; default: nothing."""

    def _compare(self, px: Prepared, py: Prepared) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finalize(self, value: Any, ref: Array) -> Array:
        xp = namespace(ref)
        if not hasattr(value, "shape"):
            value = xp.asarray(float(value), dtype=xp.float64)
            if is_torch(ref):
                value = value.to(ref.device)
        v = to_float(value)
        if not math.isfinite(v):
            raise NonFiniteResultError(
                f"{self.info.name} produced a non-finite value ({v}); the inputs are degenerate "
                "for this measure"
            )
        return value

    # -------------------------------------------------------------- helpers
    def _param_in(self, name: str, allowed: tuple[Any, ...]) -> None:
        if self.params[name] not in allowed:
            raise InvalidParameterError(
                f"{self.info.name}: {name} must be one of {allowed}, got {self.params[name]!r}"
            )

    def _param_range(
        self, name: str, lo: float, hi: float = math.inf, *, integer: bool = False,
        allow_none: bool = False,
    ) -> None:
        v = self.params[name]
        if v is None and allow_none:
            return
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if integer:
            ok = ok and float(v).is_integer()
        if not ok or not lo <= v <= hi:
            kind = "an integer" if integer else "a number"
            raise InvalidParameterError(
                f"{self.info.name}: {name} must be {kind} in [{lo}, {hi}], got {v!r}"
            )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
