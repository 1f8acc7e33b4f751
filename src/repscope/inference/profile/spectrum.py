r"""Which directions are shared: held-out predictability of each principal direction.

For a direction of prediction (say B from A) take the principal directions
``v_k`` of B (its centred covariance, largest variance first) and the
held-out residuals ``r_i`` of the linear fit (:mod:`.fits`).  Direction k is
predicted with

.. math::  R^2_k = 1 - \frac{\sum_i \langle r_i, v_k\rangle^2}
                              {\sum_i \langle b_i - \bar b_{\mathrm{train}}, v_k\rangle^2},

so the variance-weighted class score is the variance-weighted average of the
``R²_k``, while the equal-weighted CCA family counts every direction alike.
Where the two disagree this spectrum says why: how many directions, carrying
what share of the variance, are predictable (``R²_k ≥ 0.5``) and how many are
not.  Directions with less than 1e-9 of the variance are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repscope.inference.profile.fits import HeldoutErrors

__all__ = ["DirectionSpectrum", "direction_spectrum", "PREDICTABLE"]

#: a principal direction counts as predictable when its held-out R² reaches this
PREDICTABLE = 0.5


@dataclass(frozen=True)
class DirectionSpectrum:
    """Held-out R² of each principal direction of the predicted representation.

    Attributes
    ----------
    target, source : ``"A"`` / ``"B"``: which representation is predicted from which.
    variance : (m,) share of the target's variance along each principal direction.
    r2 : (m,) held-out R² of each direction.
    """

    target: str
    source: str
    variance: np.ndarray
    r2: np.ndarray

    @property
    def directions(self) -> int:
        return int(self.variance.size)

    @property
    def predictable(self) -> np.ndarray:
        return self.r2 >= PREDICTABLE

    def summary(self) -> dict[str, object]:
        """Counts and variance shares, plus the spectrum in at most 12 bins of directions."""
        ok = self.predictable
        edges = np.unique(np.linspace(0, self.directions, min(12, self.directions) + 1)
                          .round().astype(int))
        bins = [{"directions": [int(a) + 1, int(b)],
                 "variance": float(self.variance[a:b].sum()),
                 "r2": float(np.average(self.r2[a:b], weights=self.variance[a:b]))}
                for a, b in zip(edges[:-1], edges[1:]) if b > a]
        return {
            "target": self.target, "source": self.source,
            "directions": self.directions,
            "predictable": int(ok.sum()),
            "variance_predictable": float(self.variance[ok].sum()),
            "not_predictable": int((~ok).sum()),
            "variance_not_predictable": float(self.variance[~ok].sum()),
            "spectrum": bins,
        }


def direction_spectrum(err: HeldoutErrors, target_data: np.ndarray, target: str,
                       source: str) -> DirectionSpectrum:
    """The per-direction held-out R² of one direction of prediction."""
    if err.residuals is None or err.centred is None:
        raise ValueError("the held-out errors were computed without residuals")
    t = target_data - target_data.mean(axis=0)
    _, sig, vt = np.linalg.svd(t, full_matrices=False)
    var = sig**2
    share = var / var.sum() if var.sum() > 0 else var
    keep = share > 1e-9
    v = vt[keep]
    res = np.sum((err.residuals @ v.T) ** 2, axis=0)
    base = np.sum((err.centred @ v.T) ** 2, axis=0)
    r2 = 1.0 - res / np.where(base > 0, base, 1.0)
    return DirectionSpectrum(target, source, share[keep], r2)
