"""Pooling of token and spatial activations into one row per input.

Token pooling (transformers)
----------------------------
``hidden`` has shape ``(b, t, d)`` and ``mask`` shape ``(b, t)`` with 1 for
real tokens and 0 for padding (the tokenizer's ``attention_mask``, optionally
with special tokens removed).  With ``T_i = {j : mask[i, j] = 1}``:

* ``mean``:  ``h_i = (1 / |T_i|) * sum_{j in T_i} hidden[i, j]`` — padding
  rows get weight exactly 0, so the result does not depend on how much padding
  the batch needed (the sentence alone and inside a batch pool identically).
* ``last``:  ``h_i = hidden[i, max T_i]`` — the last real token, wherever the
  padding is (left or right).
* ``first`` (alias ``cls``): ``h_i = hidden[i, min T_i]`` — the first real
  token (``[CLS]`` for BERT-style tokenizers with right padding).
* ``none``:  every real token becomes a row; an ``(N, 2)`` index gives
  ``(sentence, position)`` with ``position`` the rank of the token among the
  sentence's real tokens (0-based), so it too is independent of padding.

Sums are accumulated in float64 (float32 on devices without float64).  A row
of ``mask`` without any real token raises
:class:`~repscope.extract.ExtractionError` rather than dividing by zero.

Spatial pooling (convolutions)
------------------------------
Channel-first activations ``(n, c, *spatial)`` either keep every unit
(``flatten``: ``(n, c * prod(spatial))``) or are averaged over the spatial
axes (``mean``: ``(n, c)``), which makes the representation invariant to
where in the image a feature fires.
"""

from __future__ import annotations

from typing import Any

from repscope.extract._common import ExtractionError

__all__ = ["TOKEN_POOLINGS", "SPATIAL_POOLINGS", "pool_tokens", "tokens_per_row", "pool_spatial"]

TOKEN_POOLINGS = ("mean", "last", "first", "cls", "none")
SPATIAL_POOLINGS = ("flatten", "mean")


def _acc_dtype(x: Any) -> Any:
    import torch

    return torch.float32 if x.device.type == "mps" else torch.float64


def _check(hidden: Any, mask: Any) -> Any:
    if hidden.ndim != 3:
        raise ExtractionError(f"token activations must be (batch, tokens, d), got {hidden.shape}")
    if tuple(mask.shape) != tuple(hidden.shape[:2]):
        raise ExtractionError(
            f"mask shape {tuple(mask.shape)} does not match activations {tuple(hidden.shape)}"
        )
    m = mask.to(device=hidden.device) != 0
    counts = m.sum(dim=1)
    if bool((counts == 0).any()):
        rows = [int(i) for i in (counts == 0).nonzero().flatten()[:5]]
        raise ExtractionError(
            f"input rows {rows} have no real tokens to pool (empty text, or every token "
            "excluded as special)"
        )
    return m


def pool_tokens(hidden: Any, mask: Any, method: str) -> Any:
    """Pool ``(b, t, d)`` token activations over real tokens -> ``(b, d)`` (torch).

    Parameters
    ----------
    hidden : torch.Tensor, shape (b, t, d)
    mask : torch.Tensor, shape (b, t)
        Nonzero for real tokens, 0 for padding (and excluded tokens).
    method : {"mean", "last", "first", "cls"}

    Returns
    -------
    torch.Tensor, shape (b, d), in the accumulation dtype (float64 on CPU/CUDA).
    """
    import torch

    m = _check(hidden, mask)
    acc = _acc_dtype(hidden)
    b, t, _ = hidden.shape
    if method == "mean":
        w = m.to(acc).unsqueeze(-1)
        return (hidden.to(acc) * w).sum(dim=1) / w.sum(dim=1)
    positions = torch.arange(t, device=hidden.device).expand(b, t)
    if method == "last":
        idx = torch.where(m, positions, torch.full_like(positions, -1)).max(dim=1).values
    elif method in ("first", "cls"):
        idx = torch.where(m, positions, torch.full_like(positions, t)).min(dim=1).values
    else:
        raise ExtractionError(f"unknown token pooling {method!r}; choose from {TOKEN_POOLINGS}")
    return hidden[torch.arange(b, device=hidden.device), idx].to(acc)


def tokens_per_row(hidden: Any, mask: Any) -> tuple[Any, Any]:
    """All real tokens as rows (``pooling="none"``).

    Returns
    -------
    rows : torch.Tensor, shape (N, d)
        ``hidden[i, j]`` for every real token, sentence by sentence, in order.
    index : torch.Tensor, shape (N, 2), int64
        ``(i, p)``: batch row ``i`` and rank ``p`` of the token among the real
        tokens of row ``i``.
    """
    import torch

    m = _check(hidden, mask)
    rank = torch.cumsum(m.to(torch.int64), dim=1) - 1
    sent, pos = m.nonzero(as_tuple=True)
    rows = hidden[sent, pos]
    index = torch.stack([sent.to(torch.int64), rank[sent, pos]], dim=1)
    return rows, index


def pool_spatial(x: Any, method: str) -> Any:
    """Reduce a batch of activations to 2-D rows (torch or NumPy).

    ``(n,)`` -> ``(n, 1)``; ``(n, d)`` unchanged; ``(n, c, *spatial)`` ->
    ``flatten``: ``(n, c * prod(spatial))``, ``mean``: ``(n, c)`` (mean over
    the spatial axes, accumulated in float64 where the device allows).
    """
    if method not in SPATIAL_POOLINGS:
        raise ExtractionError(f"unknown spatial pooling {method!r}; choose from {SPATIAL_POOLINGS}")
    if x.ndim == 0:
        raise ExtractionError("a layer returned a 0-d value; expected a batch of activations")
    if x.ndim == 1:
        return x.reshape(-1, 1)
    if x.ndim == 2:
        return x
    if method == "flatten":
        return x.reshape(x.shape[0], -1)
    axes = tuple(range(2, x.ndim))
    if hasattr(x, "detach"):
        return x.to(_acc_dtype(x)).mean(dim=axes)
    import numpy as np

    return np.asarray(x, dtype=np.float64).mean(axis=axes)
