"""Kernel matrices and HSIC estimators shared by the kernel measures."""

from __future__ import annotations

from .._array import Array, namespace

__all__ = [
    "sq_distances",
    "median_distance",
    "rbf_kernel",
    "double_center",
    "u_center",
    "hsic_biased",
    "hsic_unbiased",
]


def sq_distances(x: Array) -> Array:
    """Pairwise squared Euclidean distances (n × n), clipped at 0, exact zero diagonal."""
    xp = namespace(x)
    sq = xp.sum(x * x, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    d2 = xp.clip(d2, 0.0, None)
    n = x.shape[0]
    eye = xp.eye(n, dtype=d2.dtype, **_dev(x))
    return d2 * (1.0 - eye)


def median_distance(d2: Array) -> Array:
    """Median of the off-diagonal pairwise Euclidean distances given squared distances."""
    xp = namespace(d2)
    n = d2.shape[0]
    iu = xp.triu(xp.ones((n, n), dtype=xp.bool, **_dev(d2)), k=1) if hasattr(xp, "triu") else None
    if iu is None:  # pragma: no cover - every supported backend has triu
        raise RuntimeError("backend lacks triu")
    vals = xp.sqrt(d2[iu])
    return _median(xp, vals)


def _median(xp, v: Array) -> Array:
    s = xp.sort(v)
    m = s.shape[0]
    if m % 2:
        return s[m // 2]
    return (s[m // 2 - 1] + s[m // 2]) / 2


def rbf_kernel(x: Array, sigma_frac: float) -> Array:
    """Gaussian kernel ``exp(-‖xi-xj‖² / (2σ²))`` with σ = sigma_frac × median distance."""
    xp = namespace(x)
    d2 = sq_distances(x)
    sigma = sigma_frac * median_distance(d2)
    return xp.exp(-d2 / (2.0 * sigma * sigma))


def double_center(k: Array) -> Array:
    """``H K H`` with ``H = I - 11ᵀ/n``."""
    xp = namespace(k)
    k = k - xp.mean(k, axis=0, keepdims=True)
    return k - xp.mean(k, axis=1, keepdims=True)


def u_center(k: Array) -> Array:
    """U-centring (Székely & Rizzo 2014) of a symmetric matrix; diagonal set to 0.

    ``⟨u_center(K), u_center(L)⟩ / (n (n-3))`` is the unbiased HSIC estimator of
    Song et al. (2012); U-centred matrices form an inner-product space, so the
    resulting CKA lies in [-1, 1].
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
    """Biased HSIC (Gretton et al. 2005) from double-centred kernels: tr(K̃L̃)/(n-1)²."""
    xp = namespace(kc)
    n = kc.shape[0]
    return xp.sum(kc * lc) / ((n - 1) ** 2)


def hsic_unbiased(ku: Array, lu: Array) -> Array:
    """Unbiased HSIC (Song et al. 2012) from U-centred kernels."""
    xp = namespace(ku)
    n = ku.shape[0]
    return xp.sum(ku * lu) / (n * (n - 3))


def _dev(x: Array) -> dict:
    dev = getattr(x, "device", None)
    if dev is None or isinstance(dev, str):
        return {}
    return {"device": dev} if type(x).__module__.startswith("torch") else {}
