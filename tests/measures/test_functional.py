"""Functional (output) measures against sklearn/scipy and hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.special import softmax
from sklearn.metrics import cohen_kappa_score

import repscope
from repscope.core.errors import (
    DegenerateInputError,
    InputShapeError,
    InputValueError,
    InvalidParameterError,
)
from repscope.measures.functional import cohen_kappa


def _one_hot_logits(pred: list[int], c: int = 3) -> np.ndarray:
    z = np.zeros((len(pred), c))
    z[np.arange(len(pred)), pred] = 1.0
    return z


# predictions:   a = 0 0 1 1 2 2, b = 0 1 1 1 2 0, labels = 0 1 1 0 2 2
A = _one_hot_logits([0, 0, 1, 1, 2, 2])
B = _one_hot_logits([0, 1, 1, 1, 2, 0])
LABELS = np.array([0, 1, 1, 0, 2, 2])


def test_disagreement_hand_worked() -> None:
    assert repscope.measure("disagreement")(A, B) == pytest.approx(2 / 6)


def test_cohen_kappa_hand_worked() -> None:
    # p_o = 4/6; p_a = (2,2,2)/6, p_b = (2,3,1)/6 -> p_e = (4+6+2)/36 = 1/3
    expected = (4 / 6 - 1 / 3) / (1 - 1 / 3)
    assert repscope.measure("cohen_kappa")(A, B) == pytest.approx(expected)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(2, 80), st.integers(0, 2**32 - 1))
def test_cohen_kappa_matches_sklearn(c: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, c, size=n)
    b = np.where(rng.random(n) < 0.5, a, rng.integers(0, c, size=n))
    if len(np.unique(np.concatenate([a, b]))) == 1:
        with pytest.raises(DegenerateInputError):
            cohen_kappa(a, b)
        return
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_accuracy_difference_and_error_consistency_hand_worked() -> None:
    # correct: a = 1 0 1 0 1 1 (acc 4/6), b = 1 1 1 0 1 0 (acc 4/6)
    acc = repscope.measure("accuracy_difference", labels=LABELS)
    assert acc(A, B) == pytest.approx(0.0)
    assert acc(A, _one_hot_logits([0, 1, 1, 0, 2, 2])) == pytest.approx(2 / 6)
    # c_obs = 2 of 6 disagree -> 4/6; c_exp = (2/3)^2 + (1/3)^2 = 5/9
    ec = repscope.measure("error_consistency", labels=LABELS)
    assert ec(A, B) == pytest.approx((4 / 6 - 5 / 9) / (1 - 5 / 9))


def test_error_consistency_is_kappa_of_correctness(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    labels = rng.integers(0, 4, size=50)
    cx, cy = x.argmax(1) == labels, y.argmax(1) == labels
    got = repscope.measure("error_consistency", labels=labels)(x, y)
    assert got == pytest.approx(cohen_kappa_score(cx, cy), abs=1e-12)


def test_labels_as_torch_and_float(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    labels = rng.integers(0, 3, size=20)
    ref = repscope.measure("accuracy_difference", labels=labels)(x, y)
    assert repscope.measure("accuracy_difference", labels=torch.from_numpy(labels))(x, y) == ref
    assert repscope.measure("accuracy_difference", labels=labels.astype(float))(x, y) == ref


# ---------------------------------------------------------------- Jensen-Shannon
def test_jensen_shannon_matches_scipy(rng: np.random.Generator) -> None:
    x, y = 3.0 * rng.normal(size=(40, 5)), 3.0 * rng.normal(size=(40, 5))
    p, q = softmax(x, axis=1), softmax(y, axis=1)
    expected = np.mean(jensenshannon(p, q, base=2, axis=1) ** 2)
    assert repscope.measure("jensen_shannon")(x, y) == pytest.approx(expected, rel=1e-10)
    probs = repscope.measure("jensen_shannon", inputs="probabilities")
    assert probs(p, q) == pytest.approx(expected, rel=1e-10)


def test_jensen_shannon_extremes_and_zero_probabilities() -> None:
    m = repscope.measure("jensen_shannon")
    big = np.array([[500.0, -500.0, 0.0], [0.0, 0.0, 0.0]])  # softmax underflows to 0
    other = np.array([[-500.0, 500.0, 0.0], [0.0, 0.0, 0.0]])
    assert m(big, big) == 0.0
    assert m(big, other) == pytest.approx(0.5)  # disjoint supports: 1; equal rows: 0
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    q = np.array([[0.0, 1.0, 0.0], [0.0, 0.5, 0.5]])
    expected = np.mean(jensenshannon(p, q, base=2, axis=1) ** 2)
    got = repscope.measure("jensen_shannon", inputs="probabilities")(p, q)
    assert got == pytest.approx(expected)
    assert got == pytest.approx((1.0 + 0.5) / 2)


def test_jensen_shannon_torch_gradient(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    x = torch.tensor(rng.normal(size=(10, 4)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(10, 4)))
    out = repscope.measure("jensen_shannon").compute(x, y)
    assert isinstance(out, torch.Tensor)
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(g).all() and float(g.abs().sum()) > 0


# ---------------------------------------------------------------------- errors
def test_missing_and_bad_labels(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    for name in ("accuracy_difference", "error_consistency"):
        with pytest.raises(InvalidParameterError, match="needs ground truth"):
            repscope.measure(name)(x, y)
        with pytest.raises(InputShapeError, match="5 labels for 6 samples"):
            repscope.measure(name, labels=LABELS[:5])(x, y)
        with pytest.raises(InputValueError, match="label 3"):
            repscope.measure(name, labels=np.array([0, 1, 2, 3, 0, 1]))(x, y)
        with pytest.raises(InvalidParameterError, match="integer"):
            repscope.measure(name, labels=np.array([0.5] * 6))
        with pytest.raises(InvalidParameterError, match="integer"):
            repscope.measure(name, labels=np.array(["a"] * 6))
        with pytest.raises(InvalidParameterError, match=">= 0"):
            repscope.measure(name, labels=-np.ones(6, dtype=int))
        with pytest.raises(InvalidParameterError, match="1-D"):
            repscope.measure(name, labels=np.zeros((6, 1), dtype=int))


def test_degenerate_outputs() -> None:
    const = _one_hot_logits([1, 1, 1, 1])
    with pytest.raises(DegenerateInputError, match="chance agreement is 1"):
        repscope.measure("cohen_kappa")(const, const)
    assert repscope.measure("disagreement")(const, const) == 0.0
    labels = np.array([1, 1, 1, 1])
    with pytest.raises(DegenerateInputError, match="always right"):
        repscope.measure("error_consistency", labels=labels)(const, const)
    with pytest.raises(InputShapeError, match="C >= 2"):
        repscope.measure("disagreement")(np.ones((4, 1)), np.ones((4, 1)))
    with pytest.raises(InputShapeError, match="equal width"):
        repscope.measure("jensen_shannon")(np.ones((4, 2)), np.ones((4, 3)))


def test_invalid_probabilities() -> None:
    m = repscope.measure("jensen_shannon", inputs="probabilities")
    ok = np.array([[0.5, 0.5], [1.0, 0.0]])
    with pytest.raises(InputValueError, match="non-negative"):
        m(np.array([[1.5, -0.5], [1.0, 0.0]]), ok)
    with pytest.raises(InputValueError, match="sum to 1"):
        m(np.array([[0.7, 0.5], [1.0, 0.0]]), ok)
    with pytest.raises(InvalidParameterError, match="inputs must be"):
        repscope.measure("jensen_shannon", inputs="scores")


def test_shared_prepared_outputs(rng: np.random.Generator) -> None:
    """Measures with equal prepare keys can reuse each other's prepared outputs.

    Jensen-Shannon depends on the logits' scale (the softmax temperature), so it
    does not share the unit-scaled outputs of the arg-max measures.
    """
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 3))
    hard, soft = repscope.measure("disagreement"), repscope.measure("jensen_shannon")
    kappa = repscope.measure("cohen_kappa")
    assert hard.prepare_key() == kappa.prepare_key() != soft.prepare_key()
    px, py = hard.prepare(x, "X"), hard.prepare(y, "Y")
    assert float(kappa.compare_prepared(px, py)) == kappa(x, y)
    sx, sy = soft.prepare(x, "X"), soft.prepare(y, "Y")
    assert float(soft.compare_prepared(sx, sy)) == pytest.approx(soft(x, y), rel=1e-15)
    labelled = repscope.measure("accuracy_difference", labels=rng.integers(0, 3, size=12))
    assert labelled.prepare_key() == hard.prepare_key()  # labels are not part of the key
    assert float(labelled.compare_prepared(px, py)) == labelled(x, y)


# ------------------------------------------------- 1-D vectors of predicted labels
HARD = ["disagreement", "cohen_kappa", "accuracy_difference", "error_consistency"]


@pytest.mark.parametrize("name", HARD)
def test_label_vectors_stand_for_outputs(name: str, rng: np.random.Generator) -> None:
    """Issue 14: disagreement and cohen_kappa refused 1-D predicted labels."""
    n, c = 30, 4
    a, b = rng.integers(0, c, size=n), rng.integers(0, c, size=n)
    truth = rng.integers(0, c, size=n)
    m = repscope.measure(name, **({"labels": truth} if name in ("accuracy_difference",
                                                                "error_consistency") else {}))
    logits_a = np.eye(c)[a] * 3.0 + 0.1 * rng.random((n, c))  # arg-max is a
    logits_b = np.eye(c)[b] * 2.0
    want = m(logits_a, logits_b)
    assert m(a, b) == want
    assert m(a, logits_b) == m(logits_a, b) == want
    assert m(a.astype(np.float32), b.astype(np.uint8)) == want
    assert m(torch.from_numpy(a), torch.from_numpy(b)) == want
    assert m(list(a), list(b)) == want
    row = repscope.compare(a, b, [m])[0]
    assert row["value"] == want and row["error"] is None


def test_label_vector_errors(rng: np.random.Generator) -> None:
    a = rng.integers(0, 3, size=10)
    with pytest.raises(InputShapeError, match="not a vector of integer class labels"):
        repscope.measure("disagreement")(a + 0.5, a)
    with pytest.raises(InputValueError, match="labels must be >= 0"):
        repscope.measure("cohen_kappa")(a - 5, a)
    with pytest.raises(InputShapeError, match="compares soft outputs"):
        repscope.measure("jensen_shannon")(a, a)
    with pytest.raises(InputShapeError, match="same number of samples"):
        repscope.measure("disagreement")(a, a[:-1])
    with pytest.raises(InputShapeError, match="same number of samples"):
        repscope.compare(a, a[:-1], ["disagreement"])
    with pytest.raises(InputValueError, match="NaN"):
        repscope.measure("disagreement")(np.array([0.0, np.nan, 1.0]), np.array([0, 1, 1]))
    with pytest.raises(repscope.InsufficientSamplesError, match="chance is 1"):
        repscope.measure("cohen_kappa")(a[:1], a[:1])
    with pytest.raises(InputShapeError, match="2-D"):  # other measures still need (n, d)
        repscope.compare(a, a, ["disagreement", "cka"])
