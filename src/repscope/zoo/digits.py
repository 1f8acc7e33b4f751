"""Small MLPs trained on scikit-learn's bundled digits data set (offline, seconds).

The demo and the sanity tests train several of these with different seeds and
widths and compare their layers.  Every hidden layer is a named module
(``layer1`` … ``layerL``, the post-activation output) followed by ``logits``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.optional import require
from repscope.core.threads import single_threaded

__all__ = [
    "DigitsData",
    "DigitsMLP",
    "accuracy",
    "load_digits_data",
    "pretrained",
    "train_digits_mlp",
]


@dataclass(frozen=True)
class DigitsData:
    """Standardised 8×8 digit images (64 features) with a fixed train/test split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)


@functools.lru_cache(maxsize=4)
def load_digits_data(test_fraction: float = 0.3, seed: int = 0) -> DigitsData:
    """Load scikit-learn's digits (1797 images), standardise with train statistics, split."""
    from sklearn.datasets import load_digits

    ds = load_digits()
    x = ds.data.astype(np.float32)
    y = ds.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    mu = x[train].mean(0)
    sd = x[train].std(0) + 1.0
    x = (x - mu) / sd
    parts = [x[train], y[train], x[test], y[test]]
    for a in parts:  # cached and shared: keep them immutable
        a.flags.writeable = False
    return DigitsData(*parts)


def _torch() -> Any:
    return require("torch", purpose="the digits networks (repscope.zoo)")


class DigitsMLP(_torch().nn.Module):  # type: ignore[misc]
    """``in → [Linear → ReLU] × L → Linear(n_classes)`` with named layers.

    Parameters
    ----------
    widths : hidden widths, one per layer.
    n_in, n_classes : input and output sizes.
    """

    def __init__(self, widths: tuple[int, ...], n_in: int = 64, n_classes: int = 10) -> None:
        torch = _torch()
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        prev = n_in
        for i, w in enumerate(self.widths, start=1):
            setattr(self, f"layer{i}", torch.nn.Sequential(torch.nn.Linear(prev, w),
                                                          torch.nn.ReLU()))
            prev = w
        self.logits = torch.nn.Linear(prev, n_classes)

    @property
    def layer_names(self) -> list[str]:
        return [f"layer{i}" for i in range(1, len(self.widths) + 1)] + ["logits"]

    def forward(self, x: Any) -> Any:
        for i in range(1, len(self.widths) + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.logits(x)

    def forward_from(self, layer: str, h: Any) -> Any:
        """Logits from the output ``h`` of ``layer`` (the grounding sensitivity tests)."""
        names = self.layer_names
        for name in names[names.index(layer) + 1:]:
            h = getattr(self, name)(h)
        return h


def train_digits_mlp(
    data: DigitsData,
    widths: tuple[int, ...] = (64, 64, 64),
    seed: int = 0,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
) -> DigitsMLP:
    """Train a :class:`DigitsMLP` with Adam; deterministic for a given seed.

    Runs on one thread: for a network this small that is fastest.
    """
    with single_threaded():
        return _train(data, widths, seed, epochs, batch_size, lr)


def _train(data: DigitsData, widths: tuple[int, ...], seed: int, epochs: int, batch_size: int,
           lr: float) -> DigitsMLP:
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitsMLP(widths, n_in=data.x_train.shape[1], n_classes=data.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.tensor(data.x_train)
    y = torch.tensor(data.y_train)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Classification accuracy of ``model`` on (x, y)."""
    torch = _torch()
    with torch.no_grad():
        pred = model(torch.tensor(np.asarray(x, dtype=np.float32))).argmax(1).numpy()
    return float((pred == np.asarray(y)).mean())


def pretrained(
    widths: list[int] | tuple[int, ...] = (64, 64, 64),
    seed: int = 0,
    epochs: int = 30,
    lr: float = 1e-3,
) -> DigitsMLP:
    """Factory for study files: a :class:`DigitsMLP` trained on the default split.

    Training is deterministic for a given ``(widths, seed, epochs)`` and takes
    about a second on a laptop CPU.
    """
    return train_digits_mlp(load_digits_data(), widths=tuple(widths), seed=seed, epochs=epochs,
                            lr=lr)
