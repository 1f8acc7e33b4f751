"""Model stitching (Lenc & Vedaldi 2015; Bansal, Nakkiran & Barak 2021).

To test whether layer ``a`` of model A carries what model B's layer ``b``
needs, feed A's layer-``a`` activations through an affine *stitching layer*
into B's layer ``b`` and run the rest of B::

    input ─► A[:a] ─► s(h) = h W + c ─► B[b:] ─► prediction

The stitching layer is fit in closed form by least squares from A's to B's
activations on training inputs (optionally fine-tuned on the task with A's
head and B's tail frozen).  The score is the stitched network's accuracy
relative to B's own accuracy: ≈1 means A's layer is as good an input to B's
tail as B's own layer, up to an affine map.

Works on any ``torch.nn.Module`` through forward hooks (B's layer output is
replaced by the stitched activations), so no model surgery is needed.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.errors import InputShapeError, RepscopeError
from repscope.core.optional import require

__all__ = ["StitchResult", "stitch", "stitching_matrix"]


@dataclass(frozen=True)
class StitchResult:
    """Outcome of stitching A's ``layer_a`` into B's ``layer_b``."""

    layer_a: str
    layer_b: str
    accuracy: float
    accuracy_b: float
    fit_r2: float
    finetuned: bool

    @property
    def relative_accuracy(self) -> float:
        """Stitched accuracy divided by B's own accuracy."""
        return self.accuracy / self.accuracy_b if self.accuracy_b > 0 else float("nan")


def _torch() -> Any:
    return require("torch", purpose="model stitching")


def _module(model: Any, name: str) -> Any:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        close = difflib.get_close_matches(name, [k for k in modules if k], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RepscopeError(f"model has no module named {name!r}{hint}")
    return modules[name]


@contextlib.contextmanager
def _hook(module: Any, fn: Any) -> Iterator[None]:
    handle = module.register_forward_hook(fn)
    try:
        yield
    finally:
        handle.remove()


def _activations(model: Any, layer: str, x: Any) -> Any:
    torch = _torch()
    store: dict[str, Any] = {}

    def grab(_m: Any, _inp: Any, out: Any) -> None:
        store["out"] = out.detach()

    with torch.no_grad(), _hook(_module(model, layer), grab):
        model(x)
    return store["out"]


def _to_rows(h: Any) -> tuple[Any, tuple[int, ...]]:
    """(n, d) rows for dense layers; (n·h·w, c) rows for conv maps (1×1 stitching)."""
    if h.dim() == 2:
        return h, tuple(h.shape[1:])
    if h.dim() == 4:
        n, c, hh, ww = h.shape
        return h.permute(0, 2, 3, 1).reshape(n * hh * ww, c), tuple(h.shape[1:])
    raise InputShapeError(f"stitching supports 2-D or 4-D activations, got shape {tuple(h.shape)}")


def _from_rows(rows: Any, shape: tuple[int, ...], n: int) -> Any:
    if len(shape) == 1:
        return rows
    c, hh, ww = shape
    return rows.reshape(n, hh, ww, c).permute(0, 3, 1, 2)


def _fit_affine(ha: Any, hb: Any, ridge: float) -> tuple[Any, float]:
    """Least squares ``[ha, 1] W ≈ hb`` in float64 with a tiny relative ridge."""
    torch = _torch()
    a = torch.cat([ha.double(), torch.ones(ha.shape[0], 1, dtype=torch.float64)], 1)
    b = hb.double()
    gram = a.T @ a
    reg = ridge * torch.trace(gram) / gram.shape[0]
    w = torch.linalg.solve(gram + reg * torch.eye(gram.shape[0], dtype=torch.float64), a.T @ b)
    resid = ((a @ w - b) ** 2).sum()
    total = ((b - b.mean(0)) ** 2).sum()
    r2 = float(1 - resid / total) if float(total) > 0 else float("nan")
    return w, r2


def stitch(
    model_a: Any,
    layer_a: str,
    model_b: Any,
    layer_b: str,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    finetune_steps: int = 0,
    lr: float = 1e-3,
    batch_size: int = 64,
    ridge: float = 1e-6,
    seed: int = 0,
) -> StitchResult:
    """Stitch A's ``layer_a`` into B's ``layer_b`` and score it on the test inputs.

    Parameters
    ----------
    model_a, model_b : torch.nn.Module
        Classifiers; both are put in eval mode and never updated.
    layer_a, layer_b : str
        Module names (``dict(model.named_modules())`` keys).
    x_train, y_train, x_test, y_test : arrays
        Inputs and integer labels; the stitching layer is fit on the train split.
    finetune_steps : int
        Adam steps of task fine-tuning of the stitching layer after the
        least-squares fit (0 = closed form only).
    """
    torch = _torch()
    xtr = torch.tensor(np.asarray(x_train, dtype=np.float32))
    xte = torch.tensor(np.asarray(x_test, dtype=np.float32))
    ytr = torch.tensor(np.asarray(y_train, dtype=np.int64))
    yte = np.asarray(y_test)
    was = (model_a.training, model_b.training)
    params = list(model_a.parameters()) + list(model_b.parameters())
    grad_flags = [p.requires_grad for p in params]
    model_a.eval()
    model_b.eval()
    try:
        ha, shape_a = _to_rows(_activations(model_a, layer_a, xtr))
        hb, shape_b = _to_rows(_activations(model_b, layer_b, xtr))
        if ha.shape[0] != hb.shape[0]:
            raise InputShapeError(
                f"{layer_a} and {layer_b} have different spatial sizes; cannot stitch 1×1"
            )
        w, r2 = _fit_affine(ha, hb, ridge)
        lin = torch.nn.Linear(ha.shape[1], hb.shape[1]).double()
        with torch.no_grad():
            lin.weight.copy_(w[:-1].T)
            lin.bias.copy_(w[-1])
        target = _module(model_b, layer_b)

        def run(x: Any) -> Any:
            h, _ = _to_rows(_activations(model_a, layer_a, x))
            stitched = _from_rows(lin(h.double()).float(), shape_b, x.shape[0])
            with _hook(target, lambda _m, _i, _o: stitched):
                return model_b(x)

        if finetune_steps > 0:
            for p in params:
                p.requires_grad_(False)
            gen = torch.Generator().manual_seed(seed)
            opt = torch.optim.Adam(lin.parameters(), lr=lr)
            for _ in range(finetune_steps):
                idx = torch.randint(0, xtr.shape[0], (batch_size,), generator=gen)
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(run(xtr[idx]), ytr[idx])
                loss.backward()
                opt.step()
        with torch.no_grad():
            pred = run(xte).argmax(1).numpy()
            own = model_b(xte).argmax(1).numpy()
    finally:
        model_a.train(was[0])
        model_b.train(was[1])
        for p, flag in zip(params, grad_flags):
            p.requires_grad_(flag)
    return StitchResult(
        layer_a=layer_a,
        layer_b=layer_b,
        accuracy=float((pred == yte).mean()),
        accuracy_b=float((own == yte).mean()),
        fit_r2=r2,
        finetuned=finetune_steps > 0,
    )


def stitching_matrix(
    model_a: Any,
    layers_a: Sequence[str],
    model_b: Any,
    layers_b: Sequence[str],
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    **kwargs: Any,
) -> np.ndarray:
    """Relative stitched accuracy for every (layer of A, layer of B); rows are A's layers."""
    out = np.empty((len(layers_a), len(layers_b)))
    for i, la in enumerate(layers_a):
        for j, lb in enumerate(layers_b):
            res = stitch(model_a, la, model_b, lb, x_train, y_train, x_test, y_test, **kwargs)
            out[i, j] = res.relative_accuracy
    return out
