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

__all__ = ["ProbeResult", "fit_probe", "probe_agreement", "probe_grid", "split_indices"]


@dataclass(frozen=True)
class ProbeResult:
    """A fitted probe: held-out accuracy and predictions on the held-out inputs."""

    accuracy: float
    train_accuracy: float
    predictions: np.ndarray
    test_index: np.ndarray


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
    )


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
