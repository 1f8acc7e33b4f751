"""Shared input validation for every measure.

All checks raise a :class:`repscope.core.errors.RepscopeError` subclass with a
message that names the offending argument and what was expected.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from repscope.core.arrays import Array, float64, is_torch, namespace
from repscope.core.errors import (
    DegeneracyWarning,
    DegenerateInputError,
    InputShapeError,
    InputValueError,
    InsufficientSamplesError,
)

__all__ = [
    "CONSTANT_RTOL",
    "FLOAT32_NORMAL_RANGE",
    "as_representation",
    "check_magnitude",
    "check_pair",
    "check_not_constant",
    "constant_columns",
    "flatten_tokens",
    "input_epsilon",
    "max_abs",
    "unit_scale",
    "warn_degenerate",
]

#: the normal range of float32, ``[2⁻¹²⁶, 2¹²⁸]``: the default range of the largest
#: magnitude that measures *without* isotropic-scaling invariance accept (any float32
#: representation that is not subnormal), so that their products of up to four
#: entries stay far inside the float64 range
FLOAT32_NORMAL_RANGE: tuple[float, float] = (2.0**-126, 2.0**128)

#: a column is constant when its standard deviation is at most this fraction of its
#: largest magnitude: the spread of a column of equal values after centring is the
#: rounding error of its mean (≲ log₂(n)·ε relative), far below it, while any spread
#: the data resolve (≥ ε relative to the column's values) lies above it
CONSTANT_RTOL = 1e-13


def _coerce(x: Any, name: str) -> Array:
    """Turn lists/scalars into NumPy arrays; leave NumPy/torch arrays alone."""
    if is_torch(x):
        return x
    if isinstance(x, np.ndarray):
        return x
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise InputValueError(f"{name} could not be converted to an array: {exc}") from exc
    return arr


def _check_dtype(x: Array, name: str) -> None:
    if is_torch(x):
        if x.dtype.is_complex:
            raise InputValueError(f"{name} has complex dtype {x.dtype}; repscope needs real values")
        if x.dtype == _bool_torch():
            raise InputValueError(f"{name} has boolean dtype; cast it to a float dtype first")
        return
    kind = x.dtype.kind
    if kind == "c":
        raise InputValueError(f"{name} has complex dtype {x.dtype}; repscope needs real values")
    if kind not in "iuf":
        raise InputValueError(
            f"{name} has non-numeric dtype {x.dtype}; expected integer or floating values"
        )


def _bool_torch() -> Any:
    import torch

    return torch.bool


def as_representation(
    x: Any,
    name: str = "X",
    *,
    ndim: int = 2,
    min_samples: int = 1,
    finite: bool = True,
    cast: bool = True,
) -> Array:
    """Validate one representation matrix and promote it to float64.

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n, d)
        Rows are samples (inputs), columns are features (units).
    name : str
        Argument name used in error messages.
    ndim : int
        Required rank (2 for representations; 1 for label vectors).
    min_samples : int
        Smallest allowed ``n``.
    finite : bool
        Reject NaN and Inf.
    cast : bool
        Promote to float64 (the accumulation dtype).

    Raises
    ------
    InputShapeError, InputValueError, InsufficientSamplesError
    """
    x = _coerce(x, name)
    _check_dtype(x, name)
    shape = tuple(x.shape)
    if len(shape) != ndim:
        hint = ""
        if ndim == 2 and len(shape) == 1:
            hint = " (a single feature? reshape to (n, 1); a single sample? reshape to (1, d))"
        elif ndim == 2 and len(shape) >= 3:
            hint = (
                " (token or spatial activations? use repscope.flatten_tokens(x) to make the "
                "(n, t, d) -> (n*t, d) choice explicit, or pool over tokens first)"
            )
        raise InputShapeError(f"{name} must be {ndim}-D, got shape {shape}{hint}")
    if any(s == 0 for s in shape):
        raise InputShapeError(f"{name} is empty (shape {shape})")
    if shape[0] < min_samples:
        raise InsufficientSamplesError(
            f"{name} has {shape[0]} samples; this measure needs at least {min_samples}"
        )
    if cast:
        x = float64(x)
    if finite:
        xp = namespace(x)
        if x.dtype in (getattr(xp, "float64", None), getattr(xp, "float32", None)) or cast:
            ok = _all_finite(x)
        else:
            ok = True
        if not ok:
            raise InputValueError(f"{name} contains NaN or Inf values")
    return x


def check_pair(
    X: Any,
    Y: Any,
    *,
    min_samples: int = 2,
    same_dim: bool = False,
    cast: bool = True,
) -> tuple[Array, Array]:
    """Validate a pair of representations that must share their samples.

    Raises :class:`InputShapeError` if the numbers of samples differ (or widths,
    when ``same_dim``), plus every check of :func:`as_representation`.
    """
    X = as_representation(X, "X", min_samples=min_samples, cast=cast)
    Y = as_representation(Y, "Y", min_samples=min_samples, cast=cast)
    if X.shape[0] != Y.shape[0]:
        raise InputShapeError(
            f"X and Y must have the same number of samples (rows), got {X.shape[0]} and "
            f"{Y.shape[0]}; rows must correspond to the same inputs"
        )
    if same_dim and X.shape[1] != Y.shape[1]:
        raise InputShapeError(
            f"this measure needs X and Y of equal width, got {X.shape[1]} and {Y.shape[1]}"
        )
    if is_torch(X) != is_torch(Y):
        raise InputValueError(
            "X and Y must both be NumPy arrays or both torch tensors; convert one explicitly"
        )
    if is_torch(X) and X.device != Y.device:
        raise InputValueError(f"X is on {X.device} but Y is on {Y.device}")
    return X, Y


def _all_finite(x: Array) -> bool:
    """Whether every entry is finite: one summation pass, elementwise only if the sum is not.

    A NaN or an infinity makes the sum NaN or infinite, so a finite sum proves
    every entry finite; a non-finite sum (also possible by overflow) is decided
    entry by entry.
    """
    xp = namespace(x)
    if is_torch(x):
        total = xp.sum(x)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: decided below
            total = xp.sum(x)
    if bool(xp.isfinite(total)):
        return True
    return bool(xp.all(xp.isfinite(x)))


def check_not_constant(x: Array, name: str, measure: str) -> None:
    """Raise :class:`DegenerateInputError` when every row of ``x`` is identical.

    Rows 0 and 1 are compared first (they differ in almost every real input, so
    the check is O(d)); only when they are equal are all rows compared.
    """
    xp = namespace(x)
    if x.shape[0] > 1 and bool(xp.any(x[1] != x[0])):
        return
    if not bool(xp.any(x != x[0:1, ...])):
        raise DegenerateInputError(
            f"{name} is constant across samples (all rows identical); {measure} is undefined "
            "for a representation without variance"
        )


def input_epsilon(x: Any) -> float:
    """Machine epsilon of ``x``'s floating dtype (float16, bfloat16, float32, float64 of
    NumPy or torch); that of float64 for integers and other inputs (exact values)."""
    if is_torch(x):
        dt = x.dtype
        return float(_torch_finfo(dt).eps) if dt.is_floating_point else float(np.finfo(float).eps)
    dt = getattr(x, "dtype", None)
    if dt is not None and np.dtype(dt).kind == "f":
        return float(np.finfo(dt).eps)
    return float(np.finfo(np.float64).eps)


def _torch_finfo(dt: Any) -> Any:
    import torch

    return torch.finfo(dt)


def max_abs(x: Array) -> float:
    """The largest magnitude of the entries of ``x`` (a Python float; no autograd graph)."""
    if is_torch(x):
        return float(x.detach().abs().max().item()) if x.numel() else 0.0
    return float(np.max(np.abs(x))) if x.size else 0.0


def unit_scale(x: Array) -> tuple[Array, int]:
    """``(x · 2⁻ᵉ, e)`` with the largest magnitude of the result in [1/2, 1).

    Multiplying by a power of two is exact (unless an entry becomes subnormal,
    i.e. lies more than 2⁻¹⁰²² below the largest one), so a scale-invariant
    measure computed on the result gives the same value, bit for bit, for
    ``x`` and for ``x · 2ᵏ`` at any k that keeps the input finite — its
    products and sums then never overflow or underflow.  ``e = 0`` (and ``x``
    itself, no copy) when the largest magnitude is already in [1/2, 1) or
    ``x`` is all zero.  Works for float64 and float32 arrays of NumPy and
    torch (the factor is applied in two steps when one power of two is not
    representable in the array's dtype); autograd graphs are kept.
    """
    m = max_abs(x)
    if m == 0.0 or not math.isfinite(m):
        return x, 0
    e = math.frexp(m)[1]
    if e == 0:
        return x, 0
    limit = 1000 if str(x.dtype).endswith("float64") else 120
    k = -e
    steps = [k] if abs(k) <= limit else [k // 2, k - k // 2]
    out = x * (2.0 ** steps[0])
    for step in steps[1:]:
        out = out * (2.0**step)
    return out, e


def check_magnitude(
    x: Array, name: str, measure: str, accepted: tuple[float, float]
) -> None:
    """Raise :class:`InputValueError` when the largest magnitude of ``x`` lies outside
    ``accepted`` (an all-zero ``x`` passes: it has no magnitude to misrepresent).

    Used for measures that are not invariant to isotropic scaling: their value
    is in the units of the data, so they cannot normalise it away, and they
    accept only the range in which their products stay representable.
    """
    lo, hi = accepted
    m = max_abs(x)
    if m == 0.0 or lo <= m <= hi:
        return
    raise InputValueError(
        f"{name}'s largest magnitude {m:.3g} is outside the range [{lo:.3g}, {hi:.3g}] that "
        f"{measure} accepts: its value is in the units of the data, and beyond that range "
        "its products overflow or underflow in float64; rescale the inputs (both by the same "
        "factor) or use a scale-invariant measure"
    )


def constant_columns(sd: Array, col_max: Array) -> Array:
    """Boolean mask of the columns whose standard deviation ``sd`` is at most
    :data:`CONSTANT_RTOL` times their largest magnitude ``col_max`` (a relative
    rule: it does not depend on the data's scale; all-zero columns are constant)."""
    return sd <= CONSTANT_RTOL * col_max


def warn_degenerate(message: str, stacklevel: int = 3) -> None:
    """Emit a :class:`DegeneracyWarning` (documented degenerate regime)."""
    warnings.warn(message, DegeneracyWarning, stacklevel=stacklevel)


def flatten_tokens(x: Any) -> Array:
    """Flatten token or spatial activations into a 2-D sample matrix.

    ``(n, t, d)`` token activations become ``(n * t, d)``: every token is a
    sample.  ``(n, c, h, w)`` convolutional maps become ``(n * h * w, c)``:
    every spatial position is a sample and channels are features.  The two
    representations being compared must be flattened the same way so rows
    still correspond.  To compare whole inputs instead, pool over tokens or
    positions before calling a measure (see :mod:`repscope.extract`).
    """
    x = _coerce(x, "x")
    shape = tuple(x.shape)
    if len(shape) == 3:
        n, t, d = shape
        return x.reshape(n * t, d)
    if len(shape) == 4:
        n, c, h, w = shape
        xp = namespace(x)
        moved = xp.permute_dims(x, (0, 2, 3, 1))
        return xp.reshape(moved, (n * h * w, c))
    raise InputShapeError(f"flatten_tokens expects a 3-D or 4-D array, got shape {shape}")
