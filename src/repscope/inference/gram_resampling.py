r"""Linear CKA on bootstrap resamples from the full-data Gram matrices.

A bootstrap resample draws rows with replacement; row ``i`` appears ``cᵢ``
times (``Σ cᵢ = n``, weights ``wᵢ = cᵢ / n``).  With ``G = X̃X̃ᵀ`` the Gram
matrix of the full data, the centred Gram matrix of the resample has entry
``G̃[rₛ, rₜ]`` for its rows ``rₛ, rₜ``, where

.. math::  \tilde G = G - (Gw)\mathbf 1^\top - \mathbf 1(Gw)^\top
           + (w^\top G w)\,\mathbf 1\mathbf 1^\top

(the resample's row means of ``G`` are ``Gw``).  Hence, over the ``m`` distinct
rows drawn, ``⟨K_r, L_r⟩ = ⟨C^{1/2}G̃C^{1/2}, C^{1/2}L̃C^{1/2}⟩`` with
``C = diag(c)``, and linear CKA of the resample is the inner product of the
normalised matrices ``C^{1/2}G̃C^{1/2} / ‖·‖_F``.  Each layer's Gram matrix is
computed once; a resample then costs ``O(m²)`` per layer and one product of
stacked, flattened matrices per model pair — instead of a centred cross
product ``X̃ᵀỸ`` (``O(n dx dy)``) per pair.

Degeneracy follows :meth:`repscope.measures.base.Measure.prepare` and CKA's
``check_regime``: a resample whose distinct rows of a layer span at most one
direction once centred (:func:`repscope.core.linalg.centred_rank_at_most_one`),
or whose size the measure warns about, gives no value (NaN).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from repscope.core.arrays import to_numpy
from repscope.core.linalg import centred_rank_at_most_one
from repscope.core.validation import input_epsilon, unit_scale
from repscope.core.warning_capture import capture_warnings
from repscope.measures.base import Measure
from repscope.measures.cka import CKA

__all__ = ["GRAM_BUDGET", "GramResampler", "gram_applies"]

#: bytes of full-data Gram matrices (and as much again per resample) the shortcut may use
GRAM_BUDGET = 256 * 2**20


def gram_applies(m: Measure) -> bool:
    """Whether ``m`` is linear CKA with the biased estimator (a function of centred Grams)."""
    return type(m) is CKA and m.params["kernel"] == "linear" and not m.params["debiased"]


class GramResampler:
    """Linear CKA of every layer pair on resamples, from Gram matrices computed once.

    Parameters
    ----------
    m : the linear CKA instance (its regime check is applied to each resample).
    reps : ``{model: {layer: (n, d) array}}``.
    """

    def __init__(self, m: Measure, reps: Mapping[str, Mapping[str, Any]]) -> None:
        self.m = m
        self.layers = {model: list(layers) for model, layers in reps.items()}
        self.data: dict[tuple[str, str], np.ndarray] = {}
        self.eps: dict[tuple[str, str], float] = {}
        self.grams: dict[tuple[str, str], np.ndarray] = {}
        for model, layers in reps.items():
            for layer, x in layers.items():
                z = np.asarray(to_numpy(x), dtype=np.float64)
                z, _ = unit_scale(z)
                key = (model, layer)
                self.data[key], self.eps[key] = z, input_epsilon(x)
                zc = z - z.mean(axis=0)
                self.grams[key] = zc @ zc.T

    @staticmethod
    def fits(reps: Mapping[str, Mapping[str, Any]], n: int, budget: int = GRAM_BUDGET) -> bool:
        """Whether the Gram matrices of ``reps`` fit in ``budget`` bytes."""
        layers = sum(len(v) for v in reps.values())
        return layers * n * n * 8 <= budget

    def _regime_ok(self, n: int, dx: int, dy: int, memo: dict[tuple[int, int], bool]) -> bool:
        if (dx, dy) not in memo:
            with capture_warnings() as cw:
                self.m.check_regime(n, dx, dy)  # type: ignore[attr-defined]
            memo[(dx, dy)] = not any("DegeneracyWarning" in w for w in cw.messages)
        return memo[(dx, dy)]

    def _normalised(self, key: tuple[str, str], u: np.ndarray, w: np.ndarray,
                    root: np.ndarray, out: np.ndarray) -> bool:
        """Write the flattened ``C^{1/2} G̃ C^{1/2} / ‖·‖`` of one layer into ``out``;
        ``False`` (and zeros) if the layer is degenerate on this resample."""
        x = self.data[key]
        k = out.reshape(u.size, u.size)
        if x.shape[1] >= 2 and centred_rank_at_most_one(x[u], self.eps[key]):
            k[...] = 0.0
            return False
        np.take(self.grams[key][u], u, axis=1, out=k)
        r = k @ w
        k -= r[:, None]
        k -= r[None, :]
        k += float(w @ r)
        k *= root[:, None]
        k *= root[None, :]
        norm = float(np.sqrt(np.dot(out, out)))
        if not (norm > 0.0 and np.isfinite(norm)):
            k[...] = 0.0
            return False
        out /= norm
        return True

    def scores(self, rows: np.ndarray, pairs: Sequence[tuple[str, str]]
               ) -> dict[tuple[str, str], np.ndarray]:
        """Linear CKA of every layer pair of ``pairs`` on the resample ``rows``.

        NaN marks a degenerate cell (a layer of rank <= 1 on the resample, or a
        resample size the measure warns about).
        """
        counts = np.bincount(rows, minlength=next(iter(self.data.values())).shape[0])
        u = np.flatnonzero(counts)
        c = counts[u].astype(np.float64)
        w, root = c / rows.size, np.sqrt(c)
        stacked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for model in dict.fromkeys(m for pair in pairs for m in pair):
            layers = self.layers[model]
            mat = np.empty((len(layers), u.size * u.size))
            ok = np.array([self._normalised((model, layer), u, w, root, mat[i])
                           for i, layer in enumerate(layers)])
            stacked[model] = (mat, ok)
        memo: dict[tuple[int, int], bool] = {}
        out = {}
        for a, b in pairs:
            (ma, oka), (mb, okb) = stacked[a], stacked[b]
            s = ma @ mb.T
            for i, la in enumerate(self.layers[a]):
                for j, lb in enumerate(self.layers[b]):
                    dx, dy = self.data[(a, la)].shape[1], self.data[(b, lb)].shape[1]
                    if not (oka[i] and okb[j] and self._regime_ok(rows.size, dx, dy, memo)):
                        s[i, j] = np.nan
            out[(a, b)] = s
        return out
