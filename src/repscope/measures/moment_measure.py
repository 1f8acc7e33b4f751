"""Base class for measures that depend only on first and second moments.

Such a measure has two exact computation paths:

* feature space, from :class:`repscope.SecondMoments` (d × d matrices; cost
  ≈ n·(dx+dy)² + d³), which is also the streaming/mergeable path;
* Gram space, from the centred n × n Gram matrices (cost ≈ n²·(dx+dy) + n³),
  cheaper when n < d.

:meth:`MomentMeasure._compare` picks the cheaper one by a flop-count model
(:meth:`MomentMeasure.path_costs`; measures whose paths cost differently, e.g.
linear CKA which needs no eigen-decomposition, override it).  Subclasses
implement ``_from_moments`` and, where a Gram form exists, ``_from_grams``.

Mixed precision
---------------
Measures whose value is insensitive to small *relative* perturbations of the
moment matrices (:attr:`MomentMeasure.tolerates_mixed`: linear biased CKA and
HSIC, NBS) compute the centred products of float32 (or float16/bfloat16)
inputs with float32 GEMMs.  Such inputs are kept in float32 (classes with
``mixed_precision = True`` do not cast them; their float64 paths cast on use),
brought to unit scale by a power of two.  Linear HSIC, in the data's units, is
not brought to unit scale: it keeps float32 input only when its largest
magnitude lies in :data:`MIXED_SAFE_RANGE` (else float32 products would
overflow or underflow) and refuses float32-GEMM statistics beyond it.
Each representation is shifted by its float64 mean rounded to float32,
``z = fl32(x − s)`` with ``s = fl32(μ)``, and with ``e = μ − s`` (float64)::

    X̃ᵀỸ = zₓᵀz_y − n eₓe_yᵀ,     X̃X̃ᵀ = zzᵀ − (ze)1ᵀ − 1(ze)ᵀ + ‖e‖² 11ᵀ

where the float32 products are summed over blocks of
:data:`repscope.core.linalg.MIXED_BLOCK` rows (features) in float64.  The result
stays within ~1e-7 of the float64 answer on the same values
(``tests/perf/test_fast_paths.py``) at about twice the GEMM speed.  Measures
that whiten (the CCA family, regression, shape metrics with α < 1) or take a
square root near 0 (the Procrustes distances) amplify rounding errors and keep
the float64 path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from repscope.core.arrays import Array, float64, is_torch, namespace, to_float
from repscope.core.errors import DegenerateInputError, InputValueError
from repscope.core.linalg import MIXED_BLOCK, is_low_precision, mixed_cross, mixed_gram
from repscope.core.validation import input_epsilon, max_abs
from repscope.measures.base import Measure, Prepared, numerical_errors
from repscope.measures.moments import SecondMoments
from repscope.measures.planning import Estimate, Plan, row_blocks

__all__ = ["MIXED_SAFE_RANGE", "MomentMeasure", "choose_gram", "feature_cost", "gram_cost"]

#: relative cost of one flop of a dense symmetric eigen/SVD problem vs one GEMM flop
#: (reductions to tridiagonal/bidiagonal form run at BLAS-2 speed)
EIG_WEIGHT = 10.0
#: rows per block of the exact blocked path (:meth:`MomentMeasure._blocked`)
BLOCK_ROWS = 8192
#: fewest rows per block (the blocked path's modelled memory)
MIN_BLOCK_ROWS = 256


def feature_cost(n: int, dx: int, dy: int, eig: bool = True) -> float:
    """Flop model of the feature path: Sxx, Syy, Sxy plus two d × d eigenproblems."""
    flops = n * (dx * dx + dy * dy + 2 * dx * dy)
    if eig:
        flops += EIG_WEIGHT * (dx**3 + dy**3)
    return float(flops)


def gram_cost(n: int, dx: int, dy: int, eig: bool = True) -> float:
    """Flop model of the Gram path: Kx, Ky plus n × n eigenproblems."""
    flops = n * n * (dx + dy)
    if eig:
        flops += 2 * EIG_WEIGHT * n**3
    else:
        flops += 2 * n * n
    return float(flops)


#: largest magnitudes of float32 input for which a measure in the data's units (linear
#: HSIC) uses float32 GEMMs: squares summed over a block of 2¹⁴ rows stay below the
#: float32 maximum 2¹²⁸ and products of entries 2²⁴ below the largest stay normal
MIXED_SAFE_RANGE = (2.0**-40, 2.0**50)


def _check_mixed_magnitude(mom: SecondMoments, name: str) -> None:
    """Refuse float32-GEMM statistics of data whose magnitude float32 products misrepresent."""
    import math

    xp = namespace(mom.sxx)
    lo, hi = MIXED_SAFE_RANGE
    for who, s, mean in (("X", mom.sxx, mom.mean_x), ("Y", mom.syy, mom.mean_y)):
        diag = xp.linalg.diagonal(s)
        top = float(xp.max(diag))
        sd = math.sqrt(top / max(mom.n, 1)) if top > 0 else (0.0 if top == 0 else math.nan)
        scale = max(sd, float(xp.max(xp.abs(mean))) if int(mean.shape[0]) else 0.0)
        if not math.isfinite(scale) or bool(xp.any(diag < 0)) or (
                scale > 0 and not lo <= scale <= hi):
            raise InputValueError(
                f"{name}: the float32-GEMM statistics of {who} are at a magnitude of "
                f"{scale:.3g}, outside [{lo:.3g}, {hi:.3g}] where float32 products are exact "
                "to 1e-7; accumulate them with precision='float64'"
            )


def choose_gram(n: int, dx: int, dy: int) -> bool:
    """True when the Gram (n × n) path is cheaper than the feature (d × d) path."""
    return gram_cost(n, dx, dy) < feature_cost(n, dx, dy)


class MomentMeasure(Measure):
    """A measure computable exactly from :class:`SecondMoments`."""

    #: whether ``_from_grams`` is implemented
    has_gram_path = False
    #: whether float32 inputs may use float32 GEMMs (see the module docstring)
    mixed_precision: ClassVar[bool] = False
    thread_safe: ClassVar[bool] = True

    @property
    def supports_moments(self) -> bool:
        """Whether this configured instance can be computed from moments (streaming)."""
        return True

    def keeps_low_precision(self, x: Array) -> bool:
        """Whether float32 input ``x`` stays float32 for float32 GEMMs (module docstring).

        ``mixed_precision`` classes, for instances that bring their inputs to unit scale
        (:attr:`normalises`), or whose input's largest magnitude lies in
        :data:`MIXED_SAFE_RANGE` (linear HSIC, in the data's units): beyond it float32
        products would overflow or underflow, and the float64 path is taken.
        """
        if not self.mixed_precision:
            return False
        lo, hi = MIXED_SAFE_RANGE
        return self.normalises or lo <= max_abs(x) <= hi

    @property
    def tolerates_mixed(self) -> bool:
        """Whether statistics from float32 GEMMs give this instance within 1e-6 of float64."""
        return self.mixed_precision and self.supports_moments

    # ---------------------------------------------------------------- public
    def from_moments(self, mom: SecondMoments) -> Array:
        """Compute the measure from accumulated statistics (streaming / merged)."""
        if not self.supports_moments:
            raise DegenerateInputError(
                f"{self.info.name} with {self.params} is not a function of second moments"
            )
        if mom.precision == "mixed" and not self.tolerates_mixed:
            raise DegenerateInputError(
                f"{self.info.name} amplifies the rounding of float32 GEMMs beyond 1e-6; "
                "accumulate the statistics with precision='float64' "
                "(repscope.engine.streaming.moments(..., precision='float64'))"
            )
        mom.require(self.min_samples)
        xp = namespace(mom.sxx)
        for name, s in (("X", mom.sxx), ("Y", mom.syy)):
            if self.requires_variance and not bool(xp.any(s != 0)):
                raise DegenerateInputError(
                    f"{name} is constant across samples; {self.info.name} is undefined"
                )
        if mom.precision == "mixed":
            _check_mixed_magnitude(mom, self.info.name)
        scaled = mom.unit_scaled()  # also checks that the statistics are finite
        if self.normalises:
            mom = scaled
        with numerical_errors(self.info.name, "computing from second moments"):
            return self._finalize(self._from_moments(mom), mom.sxx)

    def prepare(self, X: Any, name: str = "X") -> Prepared:
        """Validate one representation; low-precision input of mixed-capable classes stays float32.

        ``Prepared.data`` is float64 except for float32/float16/bfloat16 input of
        a class with ``mixed_precision = True``, where it is the validated
        float32 array (``cache["low_precision"]`` is then set); float64 code
        paths of such classes cast on use (:meth:`_data64`).
        """
        if not (is_low_precision(X) and self.keeps_low_precision(X)):
            return super().prepare(X, name)
        x = self.validated(X, name, cast=False)
        xp = namespace(x)
        if x.dtype != xp.float32:
            x = xp.astype(x, xp.float32)
            if not bool(xp.all(xp.isfinite(x))):
                raise InputValueError(f"{name} contains NaN or Inf values")
        p = Prepared(self.entry(x, name, input_epsilon(X)), {"low_precision": True})
        with numerical_errors(self.info.name, f"preparing {name}"):
            self._prepare(p)
        return p

    def prepare_key(self) -> tuple[Any, ...]:
        """Second-moment measures that validate alike share prepared representations.

        Their cached entries (mean, centred copies, covariances and Grams, whitening
        factors, eigenbases) do not depend on the measure's parameters, so e.g. the
        CCA family and regression R² in a grid compute each representation's
        covariance and its factorisations once.  Measures validate alike when they
        keep or cast low-precision input alike (``mixed_precision``), bring it to
        unit scale alike (:attr:`normalises`) and share ``requires_variance`` and
        ``min_samples``; a subclass with its own ``_prepare`` keeps a private key.
        """
        if type(self)._prepare is not MomentMeasure._prepare:
            return super().prepare_key()
        return ("second-moments", bool(self.mixed_precision), self.normalises,
                self.requires_variance, self.min_samples)

    def path_costs(self, n: int, dx: int, dy: int) -> tuple[float, float]:
        """``(feature, gram)`` flop estimates used to choose the path."""
        return feature_cost(n, dx, dy), gram_cost(n, dx, dy)

    def use_gram(self, n: int, dx: int, dy: int) -> bool:
        if not self.has_gram_path:
            return False
        feature, gram = self.path_costs(n, dx, dy)
        return gram < feature

    # ---------------------------------------------------------- internals
    def _mixed(self, *ps: Prepared) -> bool:
        """Use float32 GEMMs in memory: every input is low precision and the class allows it.

        Classes that allow it only with an accuracy guard (the Procrustes
        distances) have ``tolerates_mixed`` False for streamed statistics.
        """
        return (
            self.mixed_precision
            and self.supports_moments
            and all(p.cache.get("low_precision") for p in ps)
        )

    def _prepare(self, p: Prepared) -> None:
        """Nothing eagerly: centred copies are made on first use (float64 or float32)."""

    @staticmethod
    def _data64(p: Prepared) -> Array:
        """The data in float64 (a cast for low-precision prepared data, else itself)."""
        return float64(p.data)

    def _mean(self, p: Prepared) -> Array:
        """Column means accumulated in float64 (cached)."""
        def compute() -> Array:
            x = p.data
            if x.dtype == namespace(x).float64:
                return namespace(x).mean(x, axis=0)
            if is_torch(x):
                import torch

                return torch.mean(x, dim=0, dtype=torch.float64)
            import numpy as np

            return np.mean(x, axis=0, dtype=np.float64)

        return p.cached("mean", compute)

    def _centered(self, p: Prepared) -> Array:
        """Column-centred float64 data (cached)."""
        return p.cached("centered", lambda: self._data64(p) - self._mean(p))

    def _centered32(self, p: Prepared) -> tuple[Array, Array]:
        """``(z, e)``: ``z = fl32(x − fl32(μ))`` and the float64 shift error ``e = μ − fl32(μ)``."""
        def compute() -> tuple[Array, Array]:
            xp = namespace(p.data)
            mu = self._mean(p)
            s = xp.astype(mu, xp.float32)
            x = p.data if p.data.dtype == xp.float32 else xp.astype(p.data, xp.float32)
            return x - s, mu - xp.astype(s, xp.float64)

        return p.cached("centered32", compute)

    def _self_moment(self, p: Prepared, mixed: bool = False) -> Array:
        def compute() -> Array:
            if mixed:
                xp = namespace(p.data)
                z, e = self._centered32(p)
                return mixed_cross(z, block=self.mixed_block) - p.n * xp.linalg.outer(e, e)
            xc = self._centered(p)
            return xc.T @ xc

        return p.cached("sxx_mixed" if mixed else "sxx", compute)

    #: Optional supplier of cross products ``(measure, px, py, mixed) -> sxy or None``;
    #: :func:`repscope.grid` sets it on a copy of the measure to share one batched
    #: product per layer pair across all second-moment measures.
    cross_source: Callable[[MomentMeasure, Prepared, Prepared, bool], Array | None] | None = None

    def _covariance_factor(self, p: Prepared, name: str, factor: Callable[[Array], Any]) -> Any:
        """``factor(X̃ᵀX̃)`` of the float64 covariance, cached in ``p`` under ``name``.

        Whitening factors and eigenbases belong to one representation, so a grid
        computes them once for all its pairs (a ``None`` result is cached too).
        """
        return p.cached(name, lambda: factor(self._self_moment(p)))

    #: rows (features) per float32 GEMM of the mixed-precision products; measures whose
    #: value depends on the moments only through Frobenius norms (linear CKA/HSIC) take
    #: longer blocks (:data:`repscope.core.linalg.FROBENIUS_MIXED_BLOCK`)
    mixed_block: ClassVar[int] = MIXED_BLOCK

    #: Optional memo of per-pair quantities derived from ``X̃ᵀỸ``,
    #: ``(px, py, precision, name, compute) -> value`` (precision: ``(0 for float64, else
    #: the float32 block length, whether the inputs are at unit scale)``);
    #: :func:`repscope.grid` sets it so that, e.g., the Procrustes distances and NBS share
    #: one nuclear norm per pair.
    pair_memo: Callable[[Prepared, Prepared, tuple[int, bool], str, Callable[[], Any]], Any] \
        | None = None

    def _pair_value(
        self, px: Prepared, py: Prepared, mixed: bool, name: str, compute: Callable[[], Any]
    ) -> Any:
        """``compute()``, or its memoised value for this pair (``name`` must denote a
        quantity that is the same for ``(px, py)`` and ``(py, px)``, or one whose
        every use is invariant to transposing it)."""
        if self.pair_memo is None:
            return compute()
        precision = (self.mixed_block if mixed else 0, self.normalises)
        return self.pair_memo(px, py, precision, name, compute)

    def _cross_moment(self, px: Prepared, py: Prepared, mixed: bool = False) -> Array:
        """``X̃ᵀỸ`` (centred cross product), from ``cross_source`` when it has it."""
        if self.cross_source is not None:
            hit = self.cross_source(self, px, py, mixed)
            if hit is not None:
                return hit
        return self.compute_cross(px, py, mixed)

    def compute_cross(self, px: Prepared, py: Prepared, mixed: bool = False) -> Array:
        if mixed:
            xp = namespace(px.data)
            (zx, ex), (zy, ey) = self._centered32(px), self._centered32(py)
            return mixed_cross(zx, zy, block=self.mixed_block) - px.n * xp.linalg.outer(ex, ey)
        return self._centered(px).T @ self._centered(py)

    def compute_cross_many(self, px: Prepared, pys: list[Prepared]) -> Array:
        """``X̃ᵀ[Ỹ₁ … Ỹₖ]`` in float64: one GEMM on the cached centred copies (a grid batch)."""
        xp = namespace(px.data)
        joined = xp.concat([self._centered(p) for p in pys], axis=1)
        return self._centered(px).T @ joined

    def _gram(self, p: Prepared, mixed: bool = False) -> Array:
        def compute() -> Array:
            if mixed:
                xp = namespace(p.data)
                z, e = self._centered32(p)
                ze = xp.astype(z @ xp.astype(e, xp.float32), xp.float64)
                return mixed_gram(z) - ze[:, None] - ze[None, :] + xp.sum(e * e)
            xc = self._centered(p)
            return xc @ xc.T

        return p.cached("gram_mixed" if mixed else "gram", compute)

    def _moments(self, px: Prepared, py: Prepared, mixed: bool = False) -> SecondMoments:
        return SecondMoments(
            n=px.n,
            mean_x=self._mean(px),
            mean_y=self._mean(py),
            sxx=self._self_moment(px, mixed),
            syy=self._self_moment(py, mixed),
            sxy=self._cross_moment(px, py, mixed),
            precision="mixed" if mixed else "float64",
        )

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        n, dx, dy = px.n, int(px.data.shape[1]), int(py.data.shape[1])
        self.check_regime(n, dx, dy)
        mixed = self._mixed(px, py)
        if self.use_gram(n, dx, dy):
            return self._from_grams(self._gram(px, mixed), self._gram(py, mixed), px, py)
        return self._from_moments(self._moments(px, py, mixed))

    def check_regime(self, n: int, dx: int, dy: int) -> None:
        """Hook for degeneracy warnings (e.g. d >= n for CCA)."""

    # ------------------------------------------------------------- planning
    #: modelled bytes per pair of samples of the Gram (n × n) path
    gram_pair_bytes: ClassVar[float] = 48.0

    def exact_bytes(self, n: int, dx: int, dy: int) -> float:
        """Float64 copies and centred copies of both inputs, plus the d × d statistics or
        the n × n Grams of the path :meth:`use_gram` picks."""
        data = 24.0 * n * (dx + dy)
        if self.use_gram(n, dx, dy):
            return data + self.gram_pair_bytes * float(n) * n
        return data + 48.0 * float(dx + dy) ** 2

    def blocked_bytes(self, n: int, dx: int, dy: int) -> float | None:
        """Statistics accumulated by blocks of :data:`BLOCK_ROWS` rows (instances that are
        functions of second moments)."""
        if not self.supports_moments:
            return None
        return 24.0 * MIN_BLOCK_ROWS * (dx + dy) + 48.0 * float(dx + dy) ** 2

    def _blocked(self, X: Any, Y: Any, plan: Plan) -> Estimate:
        """:class:`SecondMoments` of blocks of rows merged exactly (float64), then
        :meth:`from_moments`."""
        dx, dy = int(X.shape[1]), int(Y.shape[1])
        spare = plan.budget - 48.0 * float(dx + dy) ** 2
        rows = int(max(MIN_BLOCK_ROWS, min(BLOCK_ROWS, spare // (24.0 * (dx + dy)))))
        mom: SecondMoments | None = None
        for (_, _, xb), (_, _, yb) in zip(row_blocks(X, rows, "X"), row_blocks(Y, rows, "Y")):
            part = SecondMoments.from_arrays(xb, yb, validate=False)
            mom = part if mom is None else mom.merge(part)
        assert mom is not None
        return Estimate(to_float(self.from_moments(mom)), "exact-blocked",
                        detail={"block_rows": rows})

    def _from_moments(self, mom: SecondMoments) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _from_grams(self, kx: Array, ky: Array, px: Prepared, py: Prepared) -> Any:
        raise NotImplementedError  # pragma: no cover
