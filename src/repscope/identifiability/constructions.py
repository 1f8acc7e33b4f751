"""Analytic model constructions of Nielsen et al. (NeurIPS 2025), §3 and App. F.6.

**Circle model** (``K`` classes, ``M = 2``): unembeddings evenly spaced on a circle of
radius ``ρ``, ``g(y_k) = ρ (cos θ_k, sin θ_k)`` with ``θ_k = 2πk/K``; the ``j``-th
input of class ``k`` sits near its class direction,
``f(x_{k,j}) = r_{k,j} (cos(θ_k + φ_{k,j}), sin(θ_k + φ_{k,j}))`` with
``φ ~ U(−π/64, π/64)`` and ``r = r_min + |0.01·N(0, 1)|``.

**Permuted circle pair** (Theorem 3.1 / Table 1): model 2 places class ``k`` at
angle ``θ_{π(k)}`` (both its unembedding and its inputs, whose angular offsets
are permuted along, as in the reference construction).  Each input still sits
next to its own class's unembedding, so both models classify identically and
``d_KL → 0`` as ``ρ → ∞`` (the margin grows linearly in ρ), while the cyclic
neighbourhood order of the classes differs.  With ``π(k) = 2k + 5 mod 7`` the
first Fourier mode of the circle is mapped to the second, so the two embedding
sets are uncorrelated: ``m_CCA(f) ≈ 0`` and ``d_SVD(f) ≈ 1``; after the σ/τ
standardisation d_LLV does not depend on ρ.

**Perturbed models** (Fig. 16 left): the circle model with ``ρ = 20``,
``r_min = 5`` and, at step ``i``, embeddings perturbed by ``(i+1)·noise·N(0, I)``
(unembeddings unchanged).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from repscope.core.errors import InvalidParameterError
from repscope.identifiability.model import SoftmaxModel

__all__ = [
    "PAPER_PERMUTATION",
    "PERTURBED_NOISE",
    "circle_model",
    "perturbed_models",
    "permuted_circle_pair",
    "CircleData",
]

#: π(k) = (2k + 5) mod 7, the permutation of the paper's Table 1 construction
PAPER_PERMUTATION: tuple[int, ...] = (5, 0, 2, 4, 6, 1, 3)
#: noise per step of the perturbed-model experiment, by number of classes
PERTURBED_NOISE: dict[int, float] = {4: 0.005, 5: 0.004, 6: 0.004, 10: 0.0025, 18: 0.002}


@dataclass(frozen=True)
class CircleData:
    """Random ingredients of a circle model: class angles, offsets and lengths."""

    n_classes: int
    offsets: np.ndarray  # φ, (K, n_per_class)
    lengths: np.ndarray  # r, (K, n_per_class)

    @property
    def labels(self) -> np.ndarray:
        """True class of every input (class-major order)."""
        return np.repeat(np.arange(self.n_classes), self.offsets.shape[1])

    @property
    def angles(self) -> np.ndarray:
        return 2 * np.pi * np.arange(self.n_classes) / self.n_classes


def _draw(
    n_classes: int,
    n_per_class: int,
    min_f_length: float,
    max_offset: float,
    length_noise: float,
    rng: np.random.Generator,
) -> CircleData:
    if n_classes < 3:
        raise InvalidParameterError(f"a circle model needs at least 3 classes, got {n_classes}")
    if n_per_class < 1:
        raise InvalidParameterError(f"n_per_class must be >= 1, got {n_per_class}")
    offsets = rng.uniform(-max_offset, max_offset, size=(n_classes, n_per_class))
    lengths = min_f_length + np.abs(length_noise * rng.standard_normal((n_classes, n_per_class)))
    return CircleData(n_classes, offsets, lengths)


def _assemble(data: CircleData, rho: float, perm: np.ndarray, name: str) -> SoftmaxModel:
    th = data.angles
    ang = th[perm][:, None] + data.offsets[perm]  # class k sits at θ_π(k) with φ_π(k),j
    f = np.stack([data.lengths * np.cos(ang), data.lengths * np.sin(ang)], axis=-1)
    g = rho * np.stack([np.cos(th[perm]), np.sin(th[perm])], axis=1)
    return SoftmaxModel(f.reshape(-1, 2), g, name=name)


def _check_perm(perm: Sequence[int], k: int) -> np.ndarray:
    p = np.asarray(perm, dtype=np.intp)
    if p.shape != (k,) or sorted(p.tolist()) != list(range(k)):
        raise InvalidParameterError(f"permutation must be a permutation of 0..{k - 1}, got {perm}")
    return p


def circle_model(
    n_classes: int,
    rho: float,
    *,
    n_per_class: int = 500,
    min_f_length: float = 2.0,
    max_offset: float = np.pi / 64,
    length_noise: float = 0.01,
    seed: int | np.random.Generator | None = 0,
) -> SoftmaxModel:
    """The evenly spaced circle model (see the module docstring); inputs in class-major order."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    data = _draw(n_classes, n_per_class, min_f_length, max_offset, length_noise, rng)
    return _assemble(data, rho, np.arange(n_classes), name=f"circle K={n_classes} rho={rho:g}")


def permuted_circle_pair(
    rho: float,
    *,
    n_classes: int = 7,
    permutation: Sequence[int] | None = None,
    n_per_class: int = 500,
    min_f_length: float = 2.0,
    max_offset: float = np.pi / 64,
    length_noise: float = 0.01,
    seed: int | np.random.Generator | None = 0,
) -> tuple[SoftmaxModel, SoftmaxModel, np.ndarray]:
    """The Table 1 pair: a circle model and its class-permuted twin.

    Parameters
    ----------
    rho : float
        Unembedding norm ρ (Table 1: 1..20).
    n_classes : int
        K (paper: 7, M = 2).
    permutation : sequence of int, optional
        π; default :data:`PAPER_PERMUTATION` for K = 7, else ``π(k) = 2k + 5 mod K``
        (K odd gives exactly uncorrelated embeddings).
    n_per_class, min_f_length, max_offset, length_noise : construction constants
        (paper: 500, 2, π/64, 0.01).
    seed : seed of the offsets and lengths (the same seed gives the same inputs for
        every ρ, so only ρ changes).

    Returns
    -------
    (model_a, model_b, labels) : two :class:`SoftmaxModel` on the same ``K·n_per_class``
    inputs, and the true class of every input.
    """
    if not rho > 0:
        raise InvalidParameterError(f"rho must be > 0, got {rho}")
    if permutation is None:
        permutation = (
            PAPER_PERMUTATION if n_classes == 7 else [(2 * k + 5) % n_classes
                                                      for k in range(n_classes)]
        )
    perm = _check_perm(permutation, n_classes)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    data = _draw(n_classes, n_per_class, min_f_length, max_offset, length_noise, rng)
    a = _assemble(data, rho, np.arange(n_classes), name=f"circle rho={rho:g}")
    b = _assemble(data, rho, perm, name=f"permuted circle rho={rho:g}")
    return a, b, data.labels


def perturbed_models(
    base: SoftmaxModel,
    noise: float,
    n_steps: int = 250,
    *,
    seed: int | np.random.Generator | None = 0,
) -> Iterator[tuple[int, float, SoftmaxModel]]:
    """Yield ``(step, scale, model)`` with ``F + scale·N(0, I)``, ``scale = (step+1)·noise``.

    The unembeddings are those of ``base``; a fresh perturbation is drawn at every step.
    """
    if not noise > 0 or n_steps < 1:
        raise InvalidParameterError("noise must be > 0 and n_steps >= 1")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    for step in range(n_steps):
        scale = (step + 1) * noise
        f = base.F + scale * rng.standard_normal(base.F.shape)
        yield step, scale, SoftmaxModel(f, base.G, name=f"perturbed {scale:g}")
