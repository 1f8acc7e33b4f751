"""Mergeable float64 second-moment statistics of a pair of representations.

Every measure that depends on the data only through first and second moments
(linear CKA/HSIC, the CCA family, Procrustes and shape metrics, NBS/Bures,
linear-regression R²) can be computed exactly from

    n,  mean_x,  mean_y,  Sxx = X̃ᵀX̃,  Syy = ỸᵀỸ,  Sxy = X̃ᵀỸ

where X̃ and Ỹ are column-centred.  :class:`SecondMoments` accumulates these
from chunks with the pairwise (Chan et al., 1979) update, which keeps centred
co-moments and so avoids the cancellation of the raw ``XᵀX - n μμᵀ`` form::

    mom = SecondMoments.empty(dx, dy)
    for xb, yb in batches:
        mom.update(xb, yb)
    total = mom_worker_a.merge(mom_worker_b)   # equals the single-pass result

Chunks are promoted to float64 before the products.  The streaming
accumulators of :mod:`repscope.engine.streaming` can instead form each chunk's
centred products with float32 GEMMs (accumulated in float64 across chunks);
such statistics record ``precision="mixed"`` and measures that are not
accurate to 1e-6 from them refuse them (see
:attr:`repscope.measures.moment_measure.MomentMeasure.tolerates_mixed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repscope.core.arrays import Array, float64, namespace
from repscope.core.errors import InputShapeError, InputValueError, InsufficientSamplesError
from repscope.core.validation import check_pair

__all__ = ["SecondMoments"]

_PRECISIONS = ("float64", "mixed")


def _half_exponent(s: Array) -> int:
    """``e`` with ``max diag(s) · 2⁻²ᵉ`` in [1/4, 1) (0 for a zero diagonal)."""
    import math

    xp = namespace(s)
    top = float(xp.max(xp.linalg.diagonal(s))) if int(s.shape[0]) else 0.0
    if not top > 0.0:
        return 0
    e = math.frexp(top)[1]  # top = f·2ᵉ, f in [1/2, 1)
    return (e + 1) // 2


def _pow2(a: Array, k: int) -> Array:
    """``a · 2ᵏ`` exactly, in steps of at most 2¹⁰⁰⁰ (each factor representable)."""
    while k:
        step = max(-1000, min(1000, k))
        a = a * (2.0**step)
        k -= step
    return a


def _merged_precision(a: str, b: str) -> str:
    return "mixed" if "mixed" in (a, b) else "float64"


@dataclass
class SecondMoments:
    """Sufficient statistics (n, means, centred co-moment sums) of a pair (X, Y).

    Attributes
    ----------
    n : int
        Number of samples accumulated.
    mean_x, mean_y : arrays (dx,), (dy,)
    sxx, syy, sxy : arrays (dx, dx), (dy, dy), (dx, dy)
        Centred sums of outer products (not divided by n).
    precision : {"float64", "mixed"}
        Arithmetic of the chunk products: ``"float64"`` throughout, or
        ``"mixed"`` (float32 GEMMs of float64-centred chunks, float64
        accumulation across chunks; relative error of a few 1e-7).  A merge
        is ``"mixed"`` when either part is.
    """

    n: int
    mean_x: Array
    mean_y: Array
    sxx: Array
    syy: Array
    sxy: Array
    precision: str = "float64"

    def __post_init__(self) -> None:
        if self.precision not in _PRECISIONS:
            raise InputValueError(
                f"SecondMoments precision must be one of {_PRECISIONS}, got {self.precision!r}"
            )

    # ------------------------------------------------------------ creation
    @classmethod
    def from_arrays(cls, X: Any, Y: Any, *, validate: bool = True) -> SecondMoments:
        """Statistics of one in-memory pair (float64)."""
        if validate:
            X, Y = check_pair(X, Y, min_samples=1)
        else:
            X, Y = float64(X), float64(Y)
        xp = namespace(X, Y)
        mx = xp.mean(X, axis=0)
        my = xp.mean(Y, axis=0)
        xc = X - mx
        yc = Y - my
        return cls(
            n=int(X.shape[0]),
            mean_x=mx,
            mean_y=my,
            sxx=xc.T @ xc,
            syy=yc.T @ yc,
            sxy=xc.T @ yc,
        )

    @classmethod
    def empty(cls, dx: int, dy: int, like: Any = None) -> SecondMoments:
        """Zero statistics, ready for :meth:`update` (NumPy unless ``like`` is given)."""
        import numpy as np

        xp = namespace(like) if like is not None else namespace(np.zeros(1))
        kw = {"device": like.device} if like is not None and hasattr(like, "device") else {}
        z = lambda *s: xp.zeros(s, dtype=xp.float64, **kw)  # noqa: E731
        return cls(0, z(dx), z(dy), z(dx, dx), z(dy, dy), z(dx, dy))

    # ------------------------------------------------------------ updates
    def update(self, X: Any, Y: Any) -> SecondMoments:
        """Add a chunk of rows in place and return ``self``."""
        other = SecondMoments.from_arrays(X, Y)
        merged = self.merge(other)
        self.n, self.mean_x, self.mean_y = merged.n, merged.mean_x, merged.mean_y
        self.sxx, self.syy, self.sxy = merged.sxx, merged.syy, merged.sxy
        self.precision = merged.precision
        return self

    def merge(self, other: SecondMoments) -> SecondMoments:
        """Statistics of the union of two disjoint sample sets (exact)."""
        if tuple(self.sxy.shape) != tuple(other.sxy.shape):
            raise InputShapeError(
                f"cannot merge statistics of widths {tuple(self.sxy.shape)} and "
                f"{tuple(other.sxy.shape)}"
            )
        if self.n == 0:
            return other.copy()
        if other.n == 0:
            return self.copy()

        xp = namespace(self.sxx)
        n = self.n + other.n
        dx = other.mean_x - self.mean_x
        dy = other.mean_y - self.mean_y
        w = self.n * other.n / n
        return SecondMoments(
            n=n,
            mean_x=self.mean_x + dx * (other.n / n),
            mean_y=self.mean_y + dy * (other.n / n),
            sxx=self.sxx + other.sxx + w * xp.linalg.outer(dx, dx),
            syy=self.syy + other.syy + w * xp.linalg.outer(dy, dy),
            sxy=self.sxy + other.sxy + w * xp.linalg.outer(dx, dy),
            precision=_merged_precision(self.precision, other.precision),
        )

    def __add__(self, other: SecondMoments) -> SecondMoments:
        return self.merge(other)

    def copy(self) -> SecondMoments:
        return SecondMoments(
            self.n, self.mean_x, self.mean_y, self.sxx, self.syy, self.sxy, self.precision
        )

    def transpose(self) -> SecondMoments:
        """Statistics of (Y, X)."""
        return SecondMoments(
            self.n, self.mean_y, self.mean_x, self.syy, self.sxx, self.sxy.T, self.precision
        )

    def unit_scaled(self) -> SecondMoments:
        """The statistics of ``(X·2⁻ᵃ, Y·2⁻ᵇ)`` with powers of two bringing the largest
        diagonal entries of Sxx and Syy into [1/4, 1) (exact; for scale-invariant measures).

        Raises :class:`InputValueError` when a statistic is not finite (the data's
        squares overflowed while accumulating: rescale the data before streaming).
        """
        xp = namespace(self.sxx)
        for name, a in (("Sxx", self.sxx), ("Syy", self.syy), ("Sxy", self.sxy)):
            if not bool(xp.all(xp.isfinite(a))):
                raise InputValueError(
                    f"the accumulated statistic {name} is not finite: the data's products "
                    "overflowed float64 while accumulating; rescale the data (e.g. divide "
                    "by its largest magnitude) before streaming"
                )
        a, b = _half_exponent(self.sxx), _half_exponent(self.syy)
        return SecondMoments(
            self.n, _pow2(self.mean_x, -a), _pow2(self.mean_y, -b), _pow2(self.sxx, -2 * a),
            _pow2(self.syy, -2 * b), _pow2(self.sxy, -a - b), self.precision,
        )

    def require(self, min_samples: int) -> None:
        if self.n < min_samples:
            raise InsufficientSamplesError(
                f"statistics hold {self.n} samples; at least {min_samples} are needed"
            )

    @property
    def dims(self) -> tuple[int, int]:
        return int(self.sxx.shape[0]), int(self.syy.shape[0])
