"""Linear probes: how much task information is linearly readable from a layer.

A probe is a multinomial logistic regression fit on one split of the inputs and
scored on a held-out split.  Two models can then be compared *functionally* by
the agreement of their probes' predictions on the held-out inputs (the
fraction of inputs where both probes predict the same class).

Probes need labels, so they live beside the geometric measures rather than in
the (X, Y) measure registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.arrays import to_numpy
from repscope.core.errors import InputShapeError
from repscope.core.validation import as_representation
from repscope.inference.intervals import wilson_interval

__all__ = ["ProbeResult", "fit_probe", "majority_rate", "probe_agreement", "probe_grid",
           "split_indices"]


@dataclass(frozen=True)
class ProbeResult:
    """A fitted probe: held-out accuracy and predictions on the held-out inputs.

    Attributes
    ----------
    accuracy : fraction of the held-out inputs classified correctly.
    train_accuracy : the same on the training split.
    predictions : predicted class of each held-out input.
    test_index : row indices of the held-out inputs.
    chance : the chance line: the majority-class rate *of the held-out split*,
        i.e. the held-out accuracy of always predicting the class most frequent
        among the held-out labels (the best any constant predictor can score
        there, so a probe must beat it to read anything from the layer).
    n_classes : number of distinct classes among all labels.
    """

    accuracy: float
    train_accuracy: float
    predictions: np.ndarray
    test_index: np.ndarray
    chance: float = float("nan")
    n_classes: int = 0

    @property
    def n_test(self) -> int:
        """Number of held-out inputs the accuracy is measured on."""
        return int(self.test_index.shape[0])

    def accuracy_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Wilson interval of the held-out accuracy over the ``n_test`` held-out inputs.

        One train/test split, so the interval counts the binomial uncertainty of
        the held-out inputs only (not the variation between splits or fits).
        """
        correct = round(self.accuracy * self.n_test)
        return wilson_interval(correct, self.n_test, level)

    def to_record(self, level: float = 0.95) -> dict[str, Any]:
        """The JSON summary a report draws a bar from.

        ``{"accuracy", "ci_low", "ci_high", "chance", "n_classes", "n_test"}``:
        the held-out accuracy with its Wilson interval at ``level``
        (:meth:`accuracy_interval`), the chance line (majority-class rate of
        the held-out split), the number of classes and of held-out inputs.
        """
        low, high = self.accuracy_interval(level)
        return {"accuracy": float(self.accuracy), "ci_low": low, "ci_high": high,
                "chance": float(self.chance), "n_classes": int(self.n_classes),
                "n_test": self.n_test}


def split_indices(n: int, test_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Deterministic random train/test index split."""
    if not 0 < test_fraction < 1:
        raise InputShapeError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(n * test_fraction)))
    return np.sort(order[k:]), np.sort(order[:k])


def fit_probe(
    X: Any,
    labels: Any,
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 500,
) -> ProbeResult:
    """Fit a logistic-regression probe on a train split; score it on the held-out split.

    Features are standardised with the train-split statistics.
    """
    from sklearn.linear_model import LogisticRegression

    x = to_numpy(as_representation(X, "X", min_samples=4))
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise InputShapeError(f"labels must be a vector of length {x.shape[0]}, got {y.shape}")
    train, test = split_indices(x.shape[0], test_fraction, seed)
    if np.unique(y[train]).size < 2:
        raise InputShapeError("the train split holds a single class; a probe needs two or more")
    mu, sd = x[train].mean(0), x[train].std(0)
    sd[sd == 0] = 1.0
    z = (x - mu) / sd
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.fit(z[train], y[train])
    pred = clf.predict(z[test])
    return ProbeResult(
        accuracy=float((pred == y[test]).mean()),
        train_accuracy=float(clf.score(z[train], y[train])),
        predictions=pred,
        test_index=test,
        chance=majority_rate(y[test]),
        n_classes=int(np.unique(y).size),
    )


def majority_rate(labels: Any) -> float:
    """Fraction of ``labels`` in their most frequent class (the accuracy of always guessing it)."""
    y = np.asarray(labels)
    if y.size == 0:
        raise InputShapeError("majority_rate needs at least one label")
    _, counts = np.unique(y, return_counts=True)
    return float(counts.max() / y.size)


def probe_agreement(a: ProbeResult, b: ProbeResult) -> float:
    """Fraction of held-out inputs where two probes predict the same class."""
    if not np.array_equal(a.test_index, b.test_index):
        raise InputShapeError("the two probes were scored on different held-out inputs")
    return float((a.predictions == b.predictions).mean())


def probe_grid(
    representations: Mapping[tuple[str, str], Any],
    labels: Any,
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> dict[tuple[str, str], ProbeResult]:
    """Fit one probe per (model, layer) representation on the same split."""
    return {
        key: fit_probe(x, labels, test_fraction=test_fraction, seed=seed)
        for key, x in representations.items()
    }
