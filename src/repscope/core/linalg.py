"""Small, backend-generic linear-algebra helpers (float64, array API)."""

from __future__ import annotations

import math
from typing import Any

from repscope.core.arrays import Array, is_torch, namespace

__all__ = [
    "center",
    "centered_gram",
    "centred_rank_at_most_one",
    "psd_eigh",
    "range_basis",
    "psd_power",
    "nuclear_norm",
    "singular_values",
    "GRAM_SVD_RTOL",
    "MIXED_SVD_RTOL",
    "rank_tol",
    "snap",
    "SNAP_BITS",
    "MIXED_BLOCK",
    "FROBENIUS_MIXED_BLOCK",
    "is_low_precision",
    "center_float32",
    "mixed_cross",
    "mixed_gram",
    "deflate_ones",
    "psd_sqrt_trace",
    "gram_fidelity",
    "cholesky_pd",
    "congruence_lower",
]


def center(x: Array) -> Array:
    """Subtract the column means."""
    xp = namespace(x)
    return x - xp.mean(x, axis=0, keepdims=True)


def centered_gram(x: Array) -> Array:
    """``X̃ X̃ᵀ`` for column-centred ``X``: the linear-kernel Gram matrix (n × n)."""
    xc = center(x)
    return xc @ xc.T


#: rows per block of :func:`centred_rank_at_most_one` (bounds its temporaries)
_RANK_BLOCK = 8192


def centred_rank_at_most_one(x: Array, eps: float | None = None) -> bool:
    """Whether the column-centred rows of ``x`` span at most one direction (rank <= 1).

    Every centred row is projected on the longest one, ``v``; the rank is at
    most 1 when the residuals ``x̃ᵢ − (⟨x̃ᵢ, v⟩/‖v‖²) v`` vanish up to the rounding
    of the input and of this computation: ``‖R‖_F <= (4ε + 4(n + d)ε₆₄) ‖X‖_F``
    (the uncentred norm, so that the rounding of a large common offset counts
    as rounding), with ε the machine epsilon of the data's precision (``eps``;
    default: that of ``x``'s dtype) and ε₆₄ that of float64.
    A relative rule, independent of the data's scale (the data are brought to
    unit scale first).  O(n d) time, O(block · d) memory; the answer is a
    Python bool (no autograd graph).
    """
    from repscope.core.validation import input_epsilon, unit_scale

    xp = namespace(x)
    if is_torch(x):
        x = x.detach()
    n, d = int(x.shape[0]), int(x.shape[1])
    if n <= 2 or d == 1:
        return True
    eps = input_epsilon(x) if eps is None else eps
    x, _ = unit_scale(x)
    def blocks() -> Any:  # float64 row blocks (a view of float64 input, a cast otherwise)
        return (_as64(x[s : s + _RANK_BLOCK]) for s in range(0, n, _RANK_BLOCK))

    mu = sum(xp.sum(b, axis=0) for b in blocks()) / n
    best, v, total = -1.0, None, 0.0
    for xb in blocks():
        xc = xb - mu
        norms = xp.sum(xc * xc, axis=1)
        i = int(xp.argmax(norms))
        if float(norms[i]) > best:
            best, v = float(norms[i]), xc[i]
        total += float(xp.sum(xb * xb))
    if best <= 0.0:
        return True
    resid = 0.0
    for xb in blocks():
        xc = xb - mu
        coef = (xc @ v) / best
        r = xc - coef[:, None] * v[None, :]
        resid += float(xp.sum(r * r))
    tol = 4.0 * eps + 4.0 * (n + d) * 2.220446049250313e-16  # input rounding + this sum's
    return math.sqrt(resid) <= tol * math.sqrt(total)


#: bits below the binade of the scale that :func:`snap` keeps: values closer than
#: 2⁻⁴⁰ ≈ 9e-13 of that scale tie.  The rounding noise of a distance computed in
#: float64 from d features is ~√d·ε ≈ 2e-15 of the scale for d = 100, a five
#: hundredth of this grid, so exactly tied distances (duplicates, discrete data)
#: stay tied however the data were scaled or rounded (up to that chance of
#: straddling a grid point), while distances the data resolve stay distinct.
SNAP_BITS = 40


def snap(a: Array, unit: Any, bits: int = SNAP_BITS) -> Array:
    """``a`` rounded to multiples of ``2^(e − bits)``, e the binary exponent of ``unit``.

    ``unit`` (a scalar, or an array broadcasting against ``a``, e.g. one scale per
    row) is the size of the values' rounding reference (their largest possible
    value).  The grid is a power of two, so snapping commutes with scaling the
    data by powers of two; ties up to rounding become exact ties (a relative
    tolerance, independent of the data's scale).  NumPy arrays are rounded in
    place (and returned); torch tensors get the rounded values with the
    gradient of the identity (a straight-through rounding).
    """
    if is_torch(a):
        import torch

        u = torch.as_tensor(unit, dtype=a.dtype, device=a.device).detach()
        _, e = torch.frexp(u)
        w = torch.ldexp(torch.ones_like(u), e - bits)
        return a + (torch.round(a.detach() / w) * w - a.detach())
    import numpy as np

    _, e = np.frexp(np.asarray(unit, dtype=np.float64))
    w = np.ldexp(1.0, e - bits)
    a /= w
    np.rint(a, out=a)
    a *= w
    return a


def rank_tol(eigvals: Array, size: int) -> Any:
    """Relative tolerance below which eigenvalues of a PSD matrix count as zero."""
    xp = namespace(eigvals)
    top = xp.max(xp.abs(eigvals))
    return top * max(size, 1) * 1e-13


def psd_eigh(a: Array) -> tuple[Array, Array]:
    """Eigen-decomposition of a symmetric PSD matrix with eigenvalues clipped at 0."""
    xp = namespace(a)
    sym = (a + a.T) / 2
    w, v = xp.linalg.eigh(sym)
    return xp.clip(w, 0.0, None), v


def range_basis(a: Array, tol: float | None = None) -> tuple[Array, Array]:
    """Eigenvectors (columns) and eigenvalues spanning the numerical range of PSD ``a``.

    Eigenvalues below ``tol`` (default :func:`rank_tol`) are dropped.
    """
    w, v = psd_eigh(a)
    cut = rank_tol(w, a.shape[0]) if tol is None else tol
    keep = w > cut
    return v[:, keep], w[keep]


def psd_power(a: Array, power: float, tol: float | None = None) -> Array:
    """``a**power`` for symmetric PSD ``a`` (pseudo-power: null space maps to 0)."""
    v, w = range_basis(a, tol)
    xp = namespace(a)
    return (v * xp.pow(w, power)) @ v.T


#: relative accuracy (of the sum of the singular values) that :func:`singular_values`
#: requires of its eigenvalue route
GRAM_SVD_RTOL = 1e-10
#: the same for a matrix from float32 GEMMs (mixed precision): its entries already carry
#: ~1e-7 relative rounding, so a route error bound of 1e-8 adds at most a tenth of it
MIXED_SVD_RTOL = 1e-8


def singular_values(a: Array, rtol: float = GRAM_SVD_RTOL) -> Array:
    """Singular values of ``a`` (descending), by the cheaper route when it is accurate.

    A symmetric eigensolver without eigenvectors on the smaller Gram matrix
    ``G = aᵀa`` (or ``aaᵀ``) is 2–3× faster than an SVD (``σᵢ = √λᵢ``), but
    squaring costs accuracy for small singular values: a backward-stable solver
    (and forming G) moves each λᵢ by at most about ``c·ε·λ_max`` with
    ``c = max(p, q)``, so ``|δσᵢ| <= c·ε·λ_max / (2σᵢ)``.  The route is taken
    when this a-posteriori bound, summed over i, is at most ``rtol·Σσᵢ``
    (every λᵢ > 0); otherwise — rank-deficient or badly conditioned ``a`` — the
    SVD is used.  The sum Σσᵢ (nuclear norm, mean canonical correlation) is
    then accurate to ``rtol`` relative; individual small σᵢ may carry more of
    that error than an SVD would give them.
    """
    xp = namespace(a)
    p, q = int(a.shape[0]), int(a.shape[1])
    if min(p, q) >= 2:
        w = _gram_eigenvalues(a, q <= p)  # ascending
        if bool(w[0] > 0):
            s = xp.sqrt(w)
            bound = max(p, q) * 2.220446049250313e-16 * w[-1] * xp.sum(0.5 / s)
            if bool(bound <= rtol * xp.sum(s)):
                return xp.flip(s, axis=0)
    # LAPACK's SVD of a row-major matrix runs 15–40 % faster when it is tall (measured
    # at 256 × 384 and 512 × 1024); the singular values are those of the transpose
    return xp.linalg.svdvals(a if p >= q else a.T)


def _gram_eigenvalues(a: Array, columns: bool) -> Array:
    """Eigenvalues (ascending) of ``aᵀa`` (``columns``) or ``aaᵀ``.

    For NumPy float64, BLAS SYRK forms one triangle in Fortran order (half the
    flops of a GEMM), which the eigensolver reads as is: no symmetrising pass
    and no transposing copy (75 ms against 108 ms at 1024 × 1024).
    """
    if not is_torch(a):
        import numpy as np

        if a.dtype == np.float64:
            from scipy.linalg.blas import dsyrk

            # (aᵀ)(aᵀ)ᵀ = aᵀa with trans=0; (aᵀ)ᵀ(aᵀ) = aaᵀ with trans=1; aᵀ of a
            # row-major a is column-major, as BLAS wants it
            return np.linalg.eigvalsh(dsyrk(1.0, a.T, trans=0 if columns else 1), UPLO="U")
    xp = namespace(a)
    g = a.T @ a if columns else a @ a.T
    return xp.linalg.eigvalsh((g + g.T) / 2)


def nuclear_norm(a: Array, rtol: float = GRAM_SVD_RTOL) -> Array:
    """Sum of singular values (:func:`singular_values` with ``rtol``)."""
    xp = namespace(a)
    return xp.sum(singular_values(a, rtol))


# ------------------------------------------------------------------ mixed precision
#: rows (or features) contracted by one float32 GEMM before its result is added to
#: the float64 accumulator.  The rounding error of a float32 dot product of length k
#: grows like sqrt(k)·2⁻²⁴ relative to Σ|aᵢbᵢ|; with k <= 4096 the entries carry a
#: relative error of ~1e-6 at worst and the measures that tolerate mixed precision
#: (linear CKA/HSIC, NBS) stay within ~1e-7 of float64 (tests/perf/test_fast_paths.py).
MIXED_BLOCK = 4096
#: block length for measures that see the moment matrices only through Frobenius
#: norms and inner products (linear CKA/HSIC): per-entry rounding errors add in
#: quadrature there (observed <= 5e-9 from float64 at n = 10⁴–2·10⁴), and a float32
#: SYRK over 16384 rows runs at ~90 % of the GEMM rate against ~60 % over 4096
FROBENIUS_MIXED_BLOCK = 16384


def is_low_precision(x: Array) -> bool:
    """True for floating arrays of at most 32 bits (float32, float16, bfloat16)."""
    dt = getattr(x, "dtype", None)
    if dt is None:
        return False
    if type(x).__module__.startswith("torch"):
        return bool(dt.is_floating_point) and dt.itemsize <= 4
    import numpy as np

    return np.dtype(dt).kind == "f" and np.dtype(dt).itemsize <= 4


def _as32(x: Array) -> Array:
    xp = namespace(x)
    return x if x.dtype == xp.float32 else xp.astype(x, xp.float32)


def _as64(x: Array) -> Array:
    xp = namespace(x)
    return x if x.dtype == xp.float64 else xp.astype(x, xp.float64)


def center_float32(x: Array, mean: Array, block: int = MIXED_BLOCK) -> Array:
    """``fl32(float64(x) − mean)``: centred in float64, stored in float32.

    Works in row blocks so the float64 temporary stays at ``block × d``.
    The stored values carry one float32 rounding (relative 2⁻²⁴) of the exactly
    centred data, so large common offsets cost no accuracy.
    """
    xp = namespace(x)
    n = int(x.shape[0])
    if n <= block:
        return _as32(_as64(x) - mean)
    parts = [_as32(_as64(x[i : i + block]) - mean) for i in range(0, n, block)]
    return xp.concat(parts, axis=0)


def mixed_cross(a: Array, b: Array | None = None, block: int = MIXED_BLOCK) -> Array:
    """``aᵀb`` (or ``aᵀa``) from float32 GEMMs over row blocks, summed in float64.

    Parameters
    ----------
    a, b : float32 arrays (n, p), (n, q)
        Usually column-centred data (:func:`center_float32`).
    block : int
        Rows per float32 GEMM (bounds the float32 rounding error, see
        :data:`MIXED_BLOCK`).

    Returns
    -------
    float64 array (p, q).
    """
    n = int(a.shape[0])
    acc = None
    for i in range(0, n, block):
        ab = a[i : i + block]
        prod = ab.T @ ab if b is None else ab.T @ b[i : i + block]
        if acc is None:
            acc = _as64(prod)
        else:
            acc = _add_inplace(acc, prod)
    return acc


def mixed_gram(a: Array, block: int = MIXED_BLOCK) -> Array:
    """``a aᵀ`` (n × n) from float32 GEMMs over feature blocks, summed in float64."""
    d = int(a.shape[1])
    acc = None
    for j in range(0, d, block):
        ab = a[:, j : j + block]
        prod = ab @ ab.T
        acc = _as64(prod) if acc is None else _add_inplace(acc, prod)
    return acc


def _add_inplace(acc: Array, prod: Array) -> Array:
    """``acc + prod`` (float64 + float32) without a float64 temporary where possible.

    In-place only for NumPy arrays and torch tensors that need no gradient; an
    autograd graph gets the out-of-place sum.
    """
    if getattr(acc, "requires_grad", False) or getattr(prod, "requires_grad", False):
        return acc + _as64(prod)
    acc += prod
    return acc


# ------------------------------------------------------------ Gram-space fidelity
def deflate_ones(k: Array) -> Array:
    """The (n−1) × (n−1) block of ``H K H`` orthogonal to the all-ones vector.

    ``H = I − β v vᵀ`` with ``v = 1 + √n e₁``, ``β = 2/(vᵀv)`` is the Householder
    reflection mapping ``1`` to ``−√n e₁``.  For a centred Gram matrix
    (``K 1 = 0``) the first row and column of ``H K H`` vanish, and the trailing
    block carries every non-zero eigenvalue of K: it is positive definite when
    the centred data have rank n − 1.  Costs O(n²) (one matrix–vector product).
    """
    xp = namespace(k)
    n = int(k.shape[0])
    root = math.sqrt(n)
    beta = 1.0 / (n + root)  # 2 / vᵀv with vᵀv = 2n + 2√n
    kv = xp.sum(k, axis=1) + root * k[:, 0]  # K v
    a = xp.sum(kv) + root * kv[0]  # vᵀ K v
    w = kv[1:]  # v[1:] = 1
    # symmetric whenever K is (the correction is symmetric term by term)
    return k[1:, 1:] - beta * (w[:, None] + w[None, :]) + (beta * beta * a)


def psd_sqrt_trace(m: Array, tol_factor: float = 1.0, symmetrize: bool = True) -> Array:
    """``tr(M^{1/2}) = Σ √λᵢ`` of a symmetric PSD matrix from its eigenvalues.

    Eigenvalues below ``tol_factor · size · ε · λ_max`` (rounding level of a
    backward-stable eigensolver) count as 0, so a rank-deficient M does not pick
    up ``√ε`` noise from each of its null directions.  ``symmetrize=False``
    passes M as is: the eigensolver then reads its lower triangle only.
    """
    xp = namespace(m)
    w = xp.linalg.eigvalsh((m + m.T) / 2 if symmetrize else m)
    top = xp.max(xp.abs(w))
    size = int(m.shape[0])
    keep = w > top * (tol_factor * size * 2.220446049250313e-16)
    return xp.sum(xp.sqrt(xp.where(keep, w, xp.zeros_like(w))))


def gram_fidelity(kx: Array, ky: Array) -> Array | None:
    """``F = tr((Kx^{1/2} Ky Kx^{1/2})^{1/2})`` of centred Gram matrices, n × n route.

    Deflates the all-ones direction from both Grams (:func:`deflate_ones`),
    factors one of them by Cholesky, ``K̂x = L Lᵀ``, and sums the square roots
    of the eigenvalues of ``Lᵀ K̂y L`` (similar to ``K̂x^{1/2} K̂y K̂x^{1/2}``):
    one Cholesky, two triangular products and one symmetric eigenvalue problem
    without eigenvectors — several times cheaper than eigen-decomposing both
    Grams.  Returns ``None`` when neither deflated Gram is numerically positive
    definite (rank < n − 1, e.g. d < n − 1); the caller then falls back to the
    eigenvector route.
    """
    kxh, kyh = deflate_ones(kx), deflate_ones(ky)
    for a, b in ((kxh, kyh), (kyh, kxh)):
        chol = cholesky_pd(a)
        if chol is None:
            continue
        return psd_sqrt_trace(congruence_lower(chol, b), symmetrize=False)
    return None


def congruence_lower(chol: Array, b: Array) -> Array:
    """``Lᵀ B L`` for lower-triangular L and symmetric B, valid in its lower triangle.

    NumPy float64 input uses LAPACK ``dsygst`` (itype 2: the reduction of the
    generalized problem ``B·K v = λv`` to standard form, n³ flops — half of two
    triangular multiplies, a quarter of two GEMMs), which reads and writes the
    lower triangles only: the upper triangle of the result is not meaningful, so
    pass it to solvers that read the lower triangle (``eigvalsh``).  Other
    backends return the full matmul product.
    """
    if type(chol).__module__.startswith("numpy") and chol.dtype.char == "d" == b.dtype.char:
        import numpy as np
        from scipy.linalg import lapack

        # column-major views without copying the factor: the transpose of C-ordered L
        # is the upper factor U = Lᵀ (B = UᵀU), and U·B·Uᵀ = Lᵀ·B·L; B is symmetric, so
        # its transpose is B.  The result sits in the upper triangle of a Fortran-ordered
        # array, i.e. in the lower triangle of its (C-ordered) transpose.
        lt = chol.T if chol.flags.c_contiguous else np.asfortranarray(chol.T)
        out, info = lapack.dsygst(np.array(b.T, order="F"), lt, itype=2, lower=0,
                                  overwrite_a=1)
        if info == 0:
            return out.T
    return chol.T @ b @ chol


def cholesky_pd(a: Array) -> Array | None:
    """Cholesky factor of ``a`` if it is comfortably positive definite, else None.

    Positive definiteness is judged by the pivots: the smallest squared diagonal
    entry of L must exceed ``n · 1e-13`` times the largest diagonal entry of a
    (a factor of a nearly singular matrix would amplify rounding).
    """
    xp = namespace(a)
    n = int(a.shape[0])
    try:
        chol = xp.linalg.cholesky(a)
    except Exception:  # noqa: BLE001 - numpy LinAlgError / torch RuntimeError
        return None
    diag = xp.linalg.diagonal(chol)
    piv = diag * diag
    top = xp.max(xp.linalg.diagonal(a))
    if not bool(xp.all(xp.isfinite(piv))) or not bool(xp.min(piv) > top * n * 1e-13):
        return None
    return chol
