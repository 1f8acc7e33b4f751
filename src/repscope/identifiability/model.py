"""Softmax-family models evaluated on data: embeddings F and unembeddings G.

The model family of Nielsen et al. (NeurIPS 2025) is

.. math::

    p_{f,g}(y \\mid x) = \\frac{\\exp(f(x)^\\top g(y))}{\\sum_{y'} \\exp(f(x)^\\top g(y'))},

with an embedding ``f: X -> R^M`` and an unembedding ``g: Y -> R^M`` over a
finite label set of size ``K``.  Classifiers (logits ``f(x)ᵀ g(y)`` with ``g(y)``
the rows of the last weight matrix), autoregressive language models (``f`` =
context embedding, ``g`` = token unembedding) and contrastive predictive coding
all have this form.

repscope works with the model *evaluated on data*: ``F`` (n × M) stacks ``f(x)``
over n inputs and ``G`` (K × M) stacks ``g(y)`` over the K labels.  Everything is
NumPy float64; torch tensors are converted explicitly (:func:`SoftmaxModel.from_torch`
runs torch modules and collects F and G).

Identifiability (Theorem 2.2 of the paper, after Roeder et al. 2021): under the
*diversity condition* — the displaced embeddings ``f(x) − f(x₀)`` and the
displaced unembeddings ``g(y) − g(y₀)`` each span ``R^M`` — two models define the
same conditional distribution if and only if ``f' = A f`` and
``g'(y) − g'(y₀) = A^{-T}(g(y) − g(y₀))`` for one invertible ``A``.  In matrix
form ``(F, G)`` and ``(F Aᵀ, G A⁻¹ + 1 cᵀ)`` are indistinguishable for any
invertible ``A`` and shift ``c`` (see :meth:`SoftmaxModel.transformed`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from repscope.core.arrays import is_torch, to_numpy
from repscope.core.errors import (
    DegenerateInputError,
    InputShapeError,
    InsufficientSamplesError,
    NonFiniteResultError,
    RepscopeError,
)
from repscope.core.validation import as_representation

__all__ = [
    "DiversityConditionError",
    "DatasetNotFoundError",
    "SoftmaxModel",
    "check_model_pair",
    "embed",
    "log_softmax",
    "one_hot_codes",
]


class DiversityConditionError(DegenerateInputError):
    """The diversity condition fails: displaced embeddings or unembeddings do not span R^M,
    or a chosen pivot/input set makes a log-odds scale vanish."""


class DatasetNotFoundError(RepscopeError, FileNotFoundError):
    """A data set needed by an experiment is not where it was expected."""


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable ``logits − logsumexp(logits)`` along ``axis`` (float64).

    ``logsumexp(z) = m + log Σ exp(z − m)`` with ``m = max z``, so no term
    overflows and the largest term contributes exactly ``exp(0) = 1``.
    """
    z = np.asarray(logits, dtype=np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    lse = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return z - lse


def one_hot_codes(n_labels: int, *, drop_last: bool = True) -> np.ndarray:
    """Label codes fed to an unembedding network ``g``.

    With ``drop_last`` (the paper's encoding) the codes are ``K − 1``-dimensional
    one-hot vectors and label ``K − 1`` is the all-zero vector; otherwise plain
    ``K``-dimensional one-hot vectors.
    """
    if n_labels < 2:
        raise InsufficientSamplesError(f"need at least 2 labels, got {n_labels}")
    eye = np.eye(n_labels, dtype=np.float32)
    return eye[:, : n_labels - 1] if drop_last else eye


def _rank(a: np.ndarray) -> int:
    """Numerical rank with a relative tolerance on the singular values."""
    s = np.linalg.svd(a, compute_uv=False)
    if s.size == 0 or s[0] == 0.0:
        return 0
    tol = s[0] * max(a.shape) * np.finfo(np.float64).eps * 10
    return int(np.sum(s > tol))


def _as_matrix(x: Any, name: str) -> np.ndarray:
    arr = as_representation(x, name, min_samples=1)
    out = to_numpy(arr) if is_torch(arr) else np.asarray(arr)
    out = np.array(out, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


class SoftmaxModel:
    """A softmax-family model evaluated on ``n`` inputs and all ``K`` labels.

    Parameters
    ----------
    F : array-like or torch.Tensor, shape (n, M)
        Embeddings ``f(x)`` of the evaluation inputs (rows).
    G : array-like or torch.Tensor, shape (K, M)
        Unembeddings ``g(y)`` of every label (rows), in label order.
    check_diversity : bool
        Verify the diversity condition (``F − F[0]`` and ``G − G[0]`` have rank M).
    name : str, optional
        Label used in reports.
    bias : array-like, shape (K,), optional
        A per-label bias ``b(y)`` added to the logits, ``f(x)ᵀ g(y) + b(y)`` (a language
        model's unembedding may have one).  It is the model ``f̃ = (f, 1)``,
        ``g̃ = (g, b)``, kept apart because ``f̃`` fails the diversity condition (its
        displaced embeddings have 0 in the last coordinate).  KL and d_LLV see it
        through the log-likelihoods; d_{f,g} does not depend on it (the f side's
        log-odds columns are standardised, which removes the constant
        ``b(y_j) − b(y₀)``, and the g side uses displaced embeddings).

    Raises
    ------
    InputShapeError
        Wrong rank, empty input, or F and G of different widths M.
    InputValueError
        NaN/Inf, complex or non-numeric values.
    InsufficientSamplesError
        ``K < M + 1`` labels or ``n < M + 1`` inputs (the diversity condition needs
        M + 1 of each).
    DiversityConditionError
        The displaced embeddings or unembeddings do not span ``R^M``.
    NonFiniteResultError
        The logits ``F Gᵀ`` overflow float64.

    Notes
    -----
    ``log_likelihoods()`` is the (n × K) matrix ``ℓ[i, k] = ln p(y_k | x_i) =
    f(x_i)ᵀ g(y_k) − logsumexp_k' f(x_i)ᵀ g(y_k')`` in float64.
    """

    def __init__(
        self,
        F: Any,
        G: Any,
        *,
        check_diversity: bool = True,
        name: str | None = None,
        bias: Any = None,
    ) -> None:
        f = _as_matrix(F, "F")
        g = _as_matrix(G, "G")
        if bias is not None:
            b = _as_matrix(np.asarray(to_numpy(bias)).reshape(-1, 1), "bias").reshape(-1)
            if b.shape[0] != g.shape[0]:
                raise InputShapeError(f"bias has {b.shape[0]} entries but G has {g.shape[0]} "
                                      "labels")
            b.setflags(write=False)
        else:
            b = None
        n, m = f.shape
        k, mg = g.shape
        if m != mg:
            raise InputShapeError(
                f"F has width M={m} but G has width {mg}; embeddings and unembeddings must "
                "live in the same R^M"
            )
        if k < m + 1:
            raise InsufficientSamplesError(
                f"K={k} labels but M={m}: the diversity condition needs K >= M+1 labels"
            )
        if n < m + 1:
            raise InsufficientSamplesError(
                f"n={n} inputs but M={m}: the diversity condition needs n >= M+1 inputs"
            )
        if check_diversity:
            rg = _rank(g - g[0])
            if rg < m:
                raise DiversityConditionError(
                    f"the displaced unembeddings g(y) - g(y_0) span only a {rg}-dimensional "
                    f"subspace of R^{m}; the diversity condition (and linear identifiability) "
                    "needs them to span R^M"
                )
            rf = _rank(f - f[0])
            if rf < m:
                raise DiversityConditionError(
                    f"the displaced embeddings f(x) - f(x_0) span only a {rf}-dimensional "
                    f"subspace of R^{m}; the diversity condition needs them to span R^M"
                )
        self._F = f
        self._G = g
        self._b = b
        self.name = name
        self._ll: np.ndarray | None = None

    # ------------------------------------------------------------ basics
    @property
    def F(self) -> np.ndarray:
        """Embeddings (n × M), read-only float64."""
        return self._F

    @property
    def G(self) -> np.ndarray:
        """Unembeddings (K × M), read-only float64."""
        return self._G

    @property
    def bias(self) -> np.ndarray | None:
        """Per-label bias of the logits (K,), or None."""
        return self._b

    @property
    def n_inputs(self) -> int:
        return int(self._F.shape[0])

    @property
    def n_labels(self) -> int:
        return int(self._G.shape[0])

    @property
    def dim(self) -> int:
        """Representation dimension M."""
        return int(self._F.shape[1])

    def logits(self) -> np.ndarray:
        """``F Gᵀ`` (plus the bias) (n × K), float64."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = self._F @ self._G.T
            if self._b is not None:
                z = z + self._b
        if not np.all(np.isfinite(z)):
            raise NonFiniteResultError("the logits F Gᵀ overflow float64")
        return z

    def log_likelihoods(self) -> np.ndarray:
        """``ℓ[i, k] = ln p(y_k | x_i)`` (n × K), stable logsumexp, float64, cached."""
        if self._ll is None:
            ll = log_softmax(self.logits(), axis=1)
            ll.setflags(write=False)
            self._ll = ll
        return self._ll

    def probabilities(self) -> np.ndarray:
        """``p(y_k | x_i)`` (n × K)."""
        return np.exp(self.log_likelihoods())

    def predict(self) -> np.ndarray:
        """Most likely label of every input (n,)."""
        return np.argmax(self.logits(), axis=1)

    def transformed(self, A: Any, shift: Any = None) -> SoftmaxModel:
        """The linearly equivalent model ``(F Aᵀ, G A⁻¹ + shift)``.

        ``f ↦ A f`` and ``g ↦ A^{-T} g + c`` leave every logit difference
        ``f(x)ᵀ (g(y) − g(y'))`` and therefore the distribution unchanged.
        """
        a = np.asarray(A, dtype=np.float64)
        if a.shape != (self.dim, self.dim):
            raise InputShapeError(f"A must be {self.dim} x {self.dim}, got {a.shape}")
        if _rank(a) < self.dim:
            raise DegenerateInputError("A must be invertible")
        g = self._G @ np.linalg.inv(a)
        if shift is not None:
            c = np.asarray(shift, dtype=np.float64).reshape(-1)
            if c.shape != (self.dim,):
                raise InputShapeError(f"shift must have {self.dim} entries, got {c.shape}")
            g = g + c
        return SoftmaxModel(self._F @ a.T, g, name=self.name, bias=self._b)

    def __repr__(self) -> str:
        tag = f"{self.name!r}, " if self.name else ""
        bias = ", bias" if self._b is not None else ""
        return f"SoftmaxModel({tag}n={self.n_inputs}, K={self.n_labels}, M={self.dim}{bias})"

    # ------------------------------------------------------------ torch
    @classmethod
    def from_torch(
        cls,
        f_net: Callable[[Any], Any],
        g_net: Callable[[Any], Any],
        inputs: Any,
        label_codes: Any,
        *,
        batch_size: int = 256,
        device: Any = None,
        name: str | None = None,
        check_diversity: bool = True,
    ) -> SoftmaxModel:
        """Evaluate torch modules ``f_net`` on ``inputs`` and ``g_net`` on ``label_codes``.

        Parameters
        ----------
        f_net, g_net : torch.nn.Module (or callables on tensors)
            Embedding and unembedding networks; modules are put in eval mode and
            run without gradients.
        inputs : tensor or array, shape (n, ...)
            Evaluation inputs, processed in batches of ``batch_size``.
        label_codes : tensor or array, shape (K, ...)
            The code of every label fed to ``g_net`` (see :func:`one_hot_codes`).
        device : torch device, optional
            Where to run (default: the device of ``f_net``'s first parameter, else CPU).
        """
        F = embed(f_net, inputs, batch_size=batch_size, device=device)
        G = embed(g_net, label_codes, batch_size=batch_size, device=device)
        return cls(F, G, name=name, check_diversity=check_diversity)


def embed(net: Callable[[Any], Any], data: Any, *, batch_size: int = 256, device: Any = None
          ) -> np.ndarray:
    """Run ``net`` over ``data`` in batches (eval mode, no grad) and return float64 NumPy."""
    import torch

    if device is None:
        params = list(net.parameters()) if isinstance(net, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    x = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    if x.is_floating_point() and x.dtype == torch.float64:
        params = list(net.parameters()) if isinstance(net, torch.nn.Module) else []
        x = x.to(params[0].dtype) if params else x
    was_training = bool(getattr(net, "training", False))
    if isinstance(net, torch.nn.Module):
        net.eval()
    outs: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for start in range(0, int(x.shape[0]), batch_size):
                out = net(x[start : start + batch_size].to(device))
                outs.append(out.detach().to("cpu", torch.float64).numpy())
    finally:
        if isinstance(net, torch.nn.Module) and was_training:
            net.train()
    return np.concatenate(outs, axis=0)


def check_model_pair(a: SoftmaxModel, b: SoftmaxModel, *, same_dim: bool = False) -> None:
    """Two models must be evaluated on the same inputs and the same labels.

    Raises :class:`InputShapeError` when the numbers of inputs or labels differ (or
    the dimensions M, when ``same_dim``), and :class:`TypeError` for non-models.
    """
    for name, m in (("a", a), ("b", b)):
        if not isinstance(m, SoftmaxModel):
            raise TypeError(f"{name} must be a SoftmaxModel, got {type(m).__name__}")
    if a.n_inputs != b.n_inputs:
        raise InputShapeError(
            f"the models are evaluated on different numbers of inputs ({a.n_inputs} and "
            f"{b.n_inputs}); rows of F must correspond to the same inputs"
        )
    if a.n_labels != b.n_labels:
        raise InputShapeError(
            f"the models have different numbers of labels ({a.n_labels} and {b.n_labels})"
        )
    if same_dim and a.dim != b.dim:
        raise InputShapeError(
            f"the models have different dimensions M ({a.dim} and {b.dim}); this quantity "
            "needs equal M"
        )


def as_index_tuple(idx: Sequence[int] | np.ndarray, n: int, size: int, what: str
                   ) -> tuple[int, ...]:
    """Validate a tuple of ``size`` distinct indices in ``[0, n)``."""
    arr = np.asarray(idx)
    if arr.ndim != 1 or arr.shape[0] != size:
        raise InputShapeError(f"{what} must hold exactly {size} indices, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise InputShapeError(f"{what} must hold integer indices, got dtype {arr.dtype}")
    if np.any(arr < 0) or np.any(arr >= n):
        raise InputShapeError(f"{what} has indices outside [0, {n})")
    if len(set(arr.tolist())) != size:
        raise InputShapeError(f"{what} must hold distinct indices")
    return tuple(int(i) for i in arr)
