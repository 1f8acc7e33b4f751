"""Kernel matrices, distance matrices and HSIC estimators shared by the kernel/RSM measures.

Everything here is written against the array API, so NumPy arrays stay NumPy
and torch tensors stay torch (device and autograd graph included).  Inputs are
float64 (the measures validate and promote them first).

Numerical notes
---------------
* Squared distances use ``‖xᵢ‖² + ‖xⱼ‖² − 2⟨xᵢ, xⱼ⟩`` on **column-centred**
  data: distances are translation invariant and centring removes the large
  common offset that makes this expansion lose digits.
* Square roots of distances are taken only where the argument is positive, so
  gradients stay finite for coincident points (the diagonal, duplicate rows).
"""

from __future__ import annotations

from typing import Any

from repscope.core.arrays import Array, namespace
from repscope.core.errors import DegenerateInputError

__all__ = [
    "sq_distances",
    "distances",
    "upper_triangle",
    "median_distance",
    "rbf_kernel",
    "double_center",
    "u_center",
    "hsic_biased",
    "hsic_unbiased",
    "u_inner",
]


def _dev(x: Array) -> dict[str, Any]:
    """``{"device": ...}`` for torch tensors (creation functions need it), else ``{}``."""
    if not type(x).__module__.startswith("torch"):
        return {}
    return {"device": x.device}


#: squared distances below this fraction of ‖x̃ᵢ‖² + ‖x̃ⱼ‖² are rounding noise of the expansion
_EXPANSION_RTOL = 64 * 2.0**-52


def sq_distances(x: Array) -> Array:
    """Pairwise squared Euclidean distances (n × n), ≥ 0, exact zero diagonal.

    Values below the rounding error of the expansion (``64 ε (‖x̃ᵢ‖² + ‖x̃ⱼ‖²)``)
    are set to exactly 0, so duplicate samples have distance 0.
    """
    xp = namespace(x)
    xc = x - xp.mean(x, axis=0, keepdims=True)
    sq = xp.sum(xc * xc, axis=1)
    scale = sq[:, None] + sq[None, :]
    d2 = scale - 2.0 * (xc @ xc.T)
    # entries below the rounding error of the expansion are exact duplicates
    d2 = xp.where(d2 > _EXPANSION_RTOL * scale, d2, xp.zeros_like(d2))
    eye = xp.eye(x.shape[0], dtype=d2.dtype, **_dev(x))
    return d2 * (1.0 - eye)


def _safe_sqrt(a: Array) -> Array:
    """``sqrt(a)`` for ``a >= 0`` with gradient 0 (not inf/NaN) where ``a == 0``."""
    xp = namespace(a)
    pos = a > 0
    return xp.where(pos, xp.sqrt(xp.where(pos, a, xp.ones_like(a))), xp.zeros_like(a))


def distances(x: Array) -> Array:
    """Pairwise Euclidean distances ``‖xᵢ − xⱼ‖`` (n × n, zero diagonal, finite gradients)."""
    return _safe_sqrt(sq_distances(x))


def upper_triangle(a: Array) -> Array:
    """Entries strictly above the diagonal, row by row (the order of ``scipy.spatial.pdist``)."""
    xp = namespace(a)
    n = a.shape[0]
    idx = xp.arange(n, **_dev(a))
    return a[idx[:, None] < idx[None, :]]


def median_distance(d2: Array) -> Array:
    """Median of the off-diagonal pairwise Euclidean distances, given squared distances.

    The square root is applied to the selected order statistics only, so the
    result (and its gradient) stays finite when some points coincide.
    """
    xp = namespace(d2)
    s = xp.sort(upper_triangle(d2))
    m = s.shape[0]
    if m == 0:
        raise DegenerateInputError("the median pairwise distance needs at least 2 samples")
    if m % 2:
        return xp.sqrt(s[m // 2])
    return (xp.sqrt(s[m // 2 - 1]) + xp.sqrt(s[m // 2])) / 2


def rbf_kernel(x: Array, sigma_frac: float) -> Array:
    """Gaussian kernel ``exp(−‖xᵢ − xⱼ‖² / (2σ²))`` with σ = ``sigma_frac`` × median distance.

    Tying σ to the median pairwise distance makes the kernel invariant to
    isotropic scaling of ``x`` (and to translations and orthogonal maps).

    Raises
    ------
    DegenerateInputError
        If the median pairwise distance is 0 (more than half the pairs coincide).
    """
    xp = namespace(x)
    d2 = sq_distances(x)
    med = median_distance(d2)
    if not bool(med > 0):
        raise DegenerateInputError(
            "the median pairwise distance is 0 (most samples coincide); the RBF bandwidth "
            "sigma x median distance is undefined"
        )
    sigma = sigma_frac * med
    return xp.exp(-d2 / (2.0 * sigma * sigma))


def double_center(k: Array) -> Array:
    """``H K H`` with ``H = I − 11ᵀ/n``."""
    xp = namespace(k)
    k = k - xp.mean(k, axis=0, keepdims=True)
    return k - xp.mean(k, axis=1, keepdims=True)


def u_center(k: Array) -> Array:
    """U-centring (Székely & Rizzo 2014) of a symmetric matrix; diagonal set to 0 (n >= 3).

    ``Ũᵢⱼ = Kᵢⱼ − Kᵢ·/(n−2) − K·ⱼ/(n−2) + K··/((n−1)(n−2))`` for i ≠ j, computed
    on K with its diagonal removed (``Kᵢ·`` row sums, ``K··`` total sum).
    ``⟨Ũ(K), Ũ(L)⟩ / (n(n−3))`` is the unbiased HSIC estimator of Song et al.
    (2012); U-centred matrices form an inner-product space, so the resulting
    CKA lies in [−1, 1].
    """
    xp = namespace(k)
    n = k.shape[0]
    eye = xp.eye(n, dtype=k.dtype, **_dev(k))
    k = k * (1.0 - eye)
    row = xp.sum(k, axis=1, keepdims=True)
    col = xp.sum(k, axis=0, keepdims=True)
    tot = xp.sum(k)
    out = k - row / (n - 2) - col / (n - 2) + tot / ((n - 1) * (n - 2))
    return out * (1.0 - eye)


def hsic_biased(kc: Array, lc: Array) -> Array:
    """Biased HSIC (Gretton et al. 2005) from double-centred kernels: ``tr(K̃L̃)/(n−1)²``."""
    xp = namespace(kc)
    n = kc.shape[0]
    return xp.sum(kc * lc) / ((n - 1) ** 2)


def u_inner(ku: Array, lu: Array) -> Array:
    """The U-centred inner product ``(Ũ·Ṽ) = Σ_{i≠j} ŨᵢⱼṼᵢⱼ / (n(n−3))`` (n >= 4)."""
    xp = namespace(ku)
    n = ku.shape[0]
    return xp.sum(ku * lu) / (n * (n - 3))


def hsic_unbiased(ku: Array, lu: Array) -> Array:
    """Unbiased HSIC (Song et al. 2012) from U-centred kernels (n >= 4)."""
    return u_inner(ku, lu)
