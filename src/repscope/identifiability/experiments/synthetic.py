"""Synthetic radial classification and the MLP softmax models of Nielsen et al. §4.1.

**Data.** ``x ~ N(0, 3²·I₂)``; a point with ``x₂ < 0`` is reflected through the
origin, its angle ``α ∈ [0, π]`` to ``(1, 0)`` is binned into K bins of width
``π/K`` (the last class takes everything from the last bin start), so every
class is a pair of opposite wedges.  Train: 20,000 points (seed 0); test:
2,000 points (seed 1).

**Models.** ``f``: MLP ``2 → w → w → w → M`` and ``g``: MLP ``(K−1) → w → w → w → M``
(LeakyReLU, the last layer without bias); ``g`` reads the (K−1)-dimensional
one-hot label code in which the last label is the all-zero vector.  Optional
length normalisation rescales ``f(x)`` or ``g(y)`` to norm ``c``
(``v·c / max(‖v‖, 1e-8)``).  The model seed sets the initialisation only
(``torch.manual_seed(seed)`` before building f then g); every seed sees the same
data order (a fixed shuffling generator).

**Training.** Adam (no weight decay), mean negative log-likelihood with the
normaliser computed in float64.  All seeds of one configuration are trained
*together* as a stack of independent networks (batched matrix products): the
losses add up, every parameter belongs to one seed, and Adam acts elementwise,
so each seed follows exactly the trajectory it would follow alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError
from repscope.identifiability.model import one_hot_codes

__all__ = [
    "StackedMLP",
    "TrainedStack",
    "make_mlp",
    "radial_data",
    "radial_labels",
    "train_stack",
]


def radial_labels(x: np.ndarray, n_classes: int) -> np.ndarray:
    """Class of every point: reflect ``x₂ < 0`` through the origin, bin the angle by ``π/K``."""
    if n_classes < 2:
        raise InvalidParameterError(f"need at least 2 classes, got {n_classes}")
    x = np.asarray(x, dtype=np.float64)
    r = np.where(x[:, 1:2] < 0, -x, x)
    angle = np.arctan2(r[:, 1], r[:, 0])  # in [0, π]
    return np.minimum(np.floor(angle / (np.pi / n_classes)).astype(np.int64), n_classes - 1)


def radial_data(
    n: int, n_classes: int, seed: int, sd: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` radial-classification points (float32, n × 2, ``N(0, sd²·I)``) and their labels."""
    if n_classes < 2:
        raise InvalidParameterError(f"need at least 2 classes, got {n_classes}")
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, sd, size=(n, 2)).astype(np.float32)
    return x, radial_labels(x, n_classes)


def make_mlp(in_dim: int, width: int, out_dim: int) -> Any:
    """``in → w → w → w → out`` with LeakyReLU; the last Linear has no bias."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(in_dim, width), nn.LeakyReLU(),
        nn.Linear(width, width), nn.LeakyReLU(),
        nn.Linear(width, width), nn.LeakyReLU(),
        nn.Linear(width, out_dim, bias=False),
    )


def _stacked_class() -> type:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class _StackedMLP(nn.Module):
        """S independent 4-layer MLPs (see :func:`make_mlp`) evaluated with batched matmuls.

        ``forward(x)`` takes ``(B, in)`` (shared by every member) or ``(S, B, in)``
        and returns ``(S, B, out)``.
        """

        def __init__(self, members: Sequence[Any], fix_length: float = 0.0) -> None:
            super().__init__()
            lins = [[m for m in mem if isinstance(m, nn.Linear)] for mem in members]
            self.weights = nn.ParameterList(
                nn.Parameter(torch.stack([ls[i].weight.detach().T.clone() for ls in lins]))
                for i in range(4)
            )
            self.biases = nn.ParameterList(
                nn.Parameter(torch.stack([ls[i].bias.detach()[None, :].clone() for ls in lins]))
                for i in range(3)
            )
            self.fix_length = float(fix_length)

        @property
        def n_members(self) -> int:
            return int(self.weights[0].shape[0])

        def forward(self, x: Any) -> Any:
            h = x
            for w, b in zip(self.weights[:3], self.biases):
                h = F.leaky_relu(torch.matmul(h, w) + b)
            out = torch.matmul(h, self.weights[3])
            if self.fix_length > 0:
                norm = torch.linalg.vector_norm(out, dim=-1, keepdim=True).clamp_min(1e-8)
                out = out * (self.fix_length / norm)
            return out

        def member(self, s: int) -> Any:
            """Member ``s`` as a standalone :func:`make_mlp` network (length fixing dropped)."""
            dims = [self.weights[0].shape[1]] + [w.shape[2] for w in self.weights]
            net = make_mlp(dims[0], dims[1], dims[-1])
            lins = [m for m in net if isinstance(m, nn.Linear)]
            with torch.no_grad():
                for i, lin in enumerate(lins):
                    lin.weight.copy_(self.weights[i][s].T)
                    if i < 3:
                        lin.bias.copy_(self.biases[i][s, 0])
            return net

    return _StackedMLP


def StackedMLP(members: Sequence[Any], fix_length: float = 0.0) -> Any:  # noqa: N802
    """Build a stacked MLP from standalone :func:`make_mlp` members (torch imported lazily)."""
    return _stacked_class()(members, fix_length)


@dataclass
class TrainedStack:
    """Outcome of :func:`train_stack` for seeds ``seeds`` (arrays indexed by member)."""

    seeds: list[int]
    F_test: np.ndarray  # (S, n_test, M) float64
    G: np.ndarray  # (S, K, M) float64
    accuracy: np.ndarray  # (S,)
    test_loss: np.ndarray  # (S,) at the last evaluation
    train_loss_log: np.ndarray  # (n_logs, S) mean train loss per logging window
    test_loss_log: np.ndarray  # (n_evals, S)
    f_state: list[dict[str, Any]]
    g_state: list[dict[str, Any]]


def _nll(f_out: Any, g_out: Any, y: Any) -> Any:
    """Mean NLL per member: logits ``F Gᵀ`` normalised in float64; returns (S,)."""
    import torch

    logits = torch.matmul(f_out, g_out.transpose(1, 2)).double()
    logp = torch.log_softmax(logits, dim=-1)
    idx = y.view(1, -1, 1).expand(logp.shape[0], -1, 1)
    return -logp.gather(2, idx).squeeze(2).mean(dim=1)


def train_stack(
    seeds: Sequence[int],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    n_classes: int,
    width: int,
    dim: int = 2,
    steps: int = 15_000,
    lr: float = 1e-4,
    batch_size: int = 128,
    fix_g: float = 0.0,
    fix_f: float = 0.0,
    data_seed: int = 0,
    log_every: int = 500,
    eval_every: int = 2_000,
    device: Any = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainedStack:
    """Train one (f, g) pair per seed on the radial data; see the module docstring."""
    import torch

    dev = torch.device("cpu") if device is None else torch.device(device)
    f_members, g_members = [], []
    for s in seeds:
        torch.manual_seed(int(s))
        f_members.append(make_mlp(2, width, dim))
        g_members.append(make_mlp(n_classes - 1, width, dim))
    f_net = StackedMLP(f_members, fix_f).to(dev)
    g_net = StackedMLP(g_members, fix_g).to(dev)
    codes = torch.as_tensor(one_hot_codes(n_classes)).to(dev)
    xtr = torch.as_tensor(x_train).to(dev)
    ytr = torch.as_tensor(y_train).to(dev)
    xte = torch.as_tensor(x_test).to(dev)
    yte = torch.as_tensor(y_test).to(dev)
    opt = torch.optim.Adam([*f_net.parameters(), *g_net.parameters()], lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(int(data_seed))
    n = xtr.shape[0]

    def evaluate() -> Any:
        with torch.no_grad():
            return _nll(f_net(xte), g_net(codes), yte)

    train_log, test_log = [], []
    window = torch.zeros(len(seeds), dtype=torch.float64, device=dev)
    count, step = 0, 0
    while step < steps:
        perm = torch.randperm(n, generator=gen).to(dev)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            losses = _nll(f_net(xtr[idx]), g_net(codes), ytr[idx])
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            window += losses.detach()
            count += 1
            step += 1
            if step % log_every == 0:
                train_log.append((window / count).cpu().numpy())
                window.zero_()
                count = 0
            if step % eval_every == 0:
                test_log.append(evaluate().cpu().numpy())
            if on_step is not None:
                on_step(1)
            if step >= steps:
                break
    final = evaluate().cpu().numpy()
    with torch.no_grad():
        f_te = f_net(xte).double().cpu().numpy()
        g_all = g_net(codes).double().cpu().numpy()
    pred = np.argmax(np.einsum("snm,skm->snk", f_te, g_all), axis=2)
    acc = (pred == np.asarray(y_test)[None, :]).mean(axis=1)
    return TrainedStack(
        seeds=[int(s) for s in seeds],
        F_test=f_te,
        G=g_all,
        accuracy=acc,
        test_loss=final,
        train_loss_log=np.asarray(train_log).reshape(-1, len(seeds)),
        test_loss_log=np.asarray(test_log).reshape(-1, len(seeds)),
        f_state=[f_net.member(i).state_dict() for i in range(len(seeds))],
        g_state=[g_net.member(i).state_dict() for i in range(len(seeds))],
    )
