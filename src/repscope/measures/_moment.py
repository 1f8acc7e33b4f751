"""Base class for measures that depend only on first and second moments.

Such a measure has two exact computation paths:

* feature space, from :class:`repscope.SecondMoments` (d × d matrices; cost
  ≈ n·(dx+dy)² + d³), which is also the streaming/mergeable path;
* Gram space, from the centred n × n Gram matrices (cost ≈ n²·(dx+dy) + n³),
  cheaper when n < d.

:meth:`MomentMeasure._compare` picks the cheaper one.  Subclasses implement
``_from_moments`` and, where a Gram form exists, ``_from_grams``.
"""

from __future__ import annotations

from typing import Any

from .._array import Array, namespace
from .._linalg import center
from ..errors import DegenerateInputError
from ..moments import SecondMoments
from .base import Measure, Prepared

__all__ = ["MomentMeasure", "choose_gram"]


def choose_gram(n: int, dx: int, dy: int) -> bool:
    """True when the Gram (n × n) path is cheaper than the feature (d × d) path."""
    feature = n * (dx * dx + dy * dy + dx * dy) + dx**3 + dy**3
    gram = n * n * (dx + dy) + 2 * n**3
    return gram < feature


class MomentMeasure(Measure):
    """A measure computable exactly from :class:`SecondMoments`."""

    #: whether ``_from_grams`` is implemented
    has_gram_path = False

    @property
    def supports_moments(self) -> bool:
        """Whether this configured instance can be computed from moments (streaming)."""
        return True

    # ---------------------------------------------------------------- public
    def from_moments(self, mom: SecondMoments) -> Array:
        """Compute the measure from accumulated statistics (streaming / merged)."""
        if not self.supports_moments:
            raise DegenerateInputError(
                f"{self.info.name} with {self.params} is not a function of second moments"
            )
        mom.require(self.info.min_samples)
        xp = namespace(mom.sxx)
        for name, s in (("X", mom.sxx), ("Y", mom.syy)):
            if self.requires_variance and not bool(xp.any(s != 0)):
                raise DegenerateInputError(
                    f"{name} is constant across samples; {self.info.name} is undefined"
                )
        return self._finalize(self._from_moments(mom), mom.sxx)

    # ---------------------------------------------------------- internals
    def _prepare(self, p: Prepared) -> None:
        p.cache["centered"] = center(p.data)

    def _self_moment(self, p: Prepared) -> Array:
        s = p.cache.get("sxx")
        if s is None:
            xc = p.cache["centered"]
            s = p.cache["sxx"] = xc.T @ xc
        return s

    def _gram(self, p: Prepared) -> Array:
        g = p.cache.get("gram")
        if g is None:
            xc = p.cache["centered"]
            g = p.cache["gram"] = xc @ xc.T
        return g

    def _moments(self, px: Prepared, py: Prepared) -> SecondMoments:
        xp = namespace(px.data)
        xc, yc = px.cache["centered"], py.cache["centered"]
        return SecondMoments(
            n=px.n,
            mean_x=xp.mean(px.data, axis=0),
            mean_y=xp.mean(py.data, axis=0),
            sxx=self._self_moment(px),
            syy=self._self_moment(py),
            sxy=xc.T @ yc,
        )

    def use_gram(self, n: int, dx: int, dy: int) -> bool:
        return self.has_gram_path and choose_gram(n, dx, dy)

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        n, dx, dy = px.n, int(px.data.shape[1]), int(py.data.shape[1])
        self._check_regime(n, dx, dy)
        if self.use_gram(n, dx, dy):
            return self._from_grams(self._gram(px), self._gram(py), px, py)
        return self._from_moments(self._moments(px, py))

    def _check_regime(self, n: int, dx: int, dy: int) -> None:
        """Hook for degeneracy warnings (e.g. d >= n for CCA)."""

    def _from_moments(self, mom: SecondMoments) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _from_grams(self, kx: Array, ky: Array, px: Prepared, py: Prepared) -> Any:
        raise NotImplementedError  # pragma: no cover
