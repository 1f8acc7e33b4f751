"""Mean KL divergence between the conditionals of two softmax-family models.

.. math::

    d_{KL}(p, p') = \\frac{1}{n} \\sum_{i=1}^{n} \\sum_{y} p(y \\mid x_i)
        \\bigl(\\ln p(y \\mid x_i) - \\ln p'(y \\mid x_i)\\bigr),

the expectation of ``KL(p(·|x) ‖ p'(·|x))`` over the evaluation inputs (the
test set in Nielsen et al., NeurIPS 2025, §3).  It is asymmetric; both
directions are returned.  Theorem 3.1 of the paper: ``d_KL`` can be made
arbitrarily small while the embeddings stay far from linearly equivalent, so a
small KL says nothing about representational similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repscope.identifiability.model import SoftmaxModel, check_model_pair

__all__ = ["KLResult", "kl_divergence"]


@dataclass(frozen=True)
class KLResult:
    """Mean KL divergences in both directions with their per-input values.

    ``float(result)`` is the forward value ``d_KL(a ‖ b)`` (the paper's direction).
    """

    forward: float
    reverse: float
    per_input_forward: np.ndarray
    per_input_reverse: np.ndarray

    @property
    def value(self) -> float:
        """The forward divergence ``mean_x KL(p_a(·|x) ‖ p_b(·|x))``."""
        return self.forward

    def __float__(self) -> float:
        return self.forward

    def to_dict(self) -> dict[str, float]:
        return {"kl": self.forward, "kl_reverse": self.reverse}


def _kl_rows(la: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """``Σ_y p_a (ℓ_a − ℓ_b)`` per row, from log-probabilities (exact zeros stay zero)."""
    pa = np.exp(la)
    kl = np.sum(pa * (la - lb), axis=1)
    return np.maximum(kl, 0.0)  # clip round-off below zero; KL >= 0 (Gibbs)


def kl_divergence(a: SoftmaxModel, b: SoftmaxModel) -> KLResult:
    """Mean KL divergence over inputs between models ``a`` and ``b`` (both directions).

    Parameters
    ----------
    a, b : SoftmaxModel
        Evaluated on the same ``n`` inputs and the same ``K`` labels (their
        dimensions M may differ).

    Returns
    -------
    KLResult
        ``forward`` = ``d_KL(p_a, p_b)``, ``reverse`` = ``d_KL(p_b, p_a)``, and the
        per-input divergences.  Computed from float64 log-softmax values, so
        probabilities that underflow contribute exactly 0.

    Raises
    ------
    InputShapeError
        Different numbers of inputs or labels.
    """
    check_model_pair(a, b)
    la, lb = a.log_likelihoods(), b.log_likelihoods()
    fwd, rev = _kl_rows(la, lb), _kl_rows(lb, la)
    return KLResult(
        forward=float(np.mean(fwd)),
        reverse=float(np.mean(rev)),
        per_input_forward=fwd,
        per_input_reverse=rev,
    )
