"""Array-backend helpers: one code path for NumPy arrays and torch tensors.

Measures are written against the Python array API standard through
``array_api_compat``.  Inputs are promoted to float64 (the accumulation dtype)
on their own device, so torch tensors stay on CUDA and keep their autograd
graph.  Measures whose algorithm only exists in NumPy/SciPy (ranks, neighbour
search, k-means) call :func:`to_numpy` explicitly and declare
``backend="numpy"`` in their metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_numpy_array, is_torch_array

Array = Any  # a NumPy array or a torch tensor

__all__ = ["Array", "namespace", "is_torch", "to_numpy", "to_float", "like", "float64"]


def namespace(*arrays: Array) -> Any:
    """Return the array-API namespace shared by ``arrays`` (NumPy for lists)."""
    arrays = tuple(a for a in arrays if a is not None)
    return array_namespace(*arrays)


def is_torch(x: Array) -> bool:
    return bool(is_torch_array(x))


def is_numpy(x: Array) -> bool:
    return bool(is_numpy_array(x))


def to_numpy(x: Array) -> np.ndarray:
    """Explicit, documented conversion to a NumPy array (detaches torch tensors)."""
    if is_torch_array(x):
        t = x.detach()
        if t.dtype.is_floating_point and t.dtype not in (_torch().float32, _torch().float64):
            t = t.to(_torch().float32)  # float16/bfloat16 have no NumPy twin (bfloat16)
        return t.cpu().numpy()
    return np.asarray(x)


def float64(x: Array) -> Array:
    """Promote ``x`` to float64 on its own device (no copy when already float64)."""
    xp = namespace(x)
    if x.dtype == xp.float64:
        return x
    return xp.astype(x, xp.float64)


def to_float(value: Array) -> float:
    """Convert a 0-d backend scalar to a Python float."""
    if is_torch_array(value):
        return float(value.detach().cpu().item())
    return float(value)


def like(value: float, ref: Array) -> Array:
    """A 0-d float64 array of ``value`` in ``ref``'s namespace and device."""
    xp = namespace(ref)
    if is_torch_array(ref):
        return xp.asarray(value, dtype=xp.float64, device=ref.device)
    return xp.asarray(value, dtype=xp.float64)


def _torch() -> Any:
    import torch

    return torch
