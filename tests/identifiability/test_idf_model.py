"""SoftmaxModel: log-likelihoods, validation errors, linear equivalence, torch helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import log_softmax as scipy_log_softmax

import repscope
from repscope.core.errors import (
    DegenerateInputError,
    InputShapeError,
    InputValueError,
    InsufficientSamplesError,
    NonFiniteResultError,
)
from repscope.identifiability import (
    DiversityConditionError,
    SoftmaxModel,
    log_softmax,
    one_hot_codes,
)
from repscope.identifiability.model import as_index_tuple, check_model_pair


def _model(rng: np.random.Generator, n: int = 30, k: int = 6, m: int = 2) -> SoftmaxModel:
    return SoftmaxModel(rng.normal(size=(n, m)), rng.normal(size=(k, m)))


def test_log_likelihoods_match_scipy(rng: np.random.Generator) -> None:
    a = _model(rng)
    ref = scipy_log_softmax(a.F @ a.G.T, axis=1)
    np.testing.assert_allclose(a.log_likelihoods(), ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(a.probabilities().sum(axis=1), 1.0, rtol=1e-13)
    assert a.log_likelihoods().dtype == np.float64
    assert (a.n_inputs, a.n_labels, a.dim) == (30, 6, 2)


def test_log_softmax_is_stable_for_huge_logits() -> None:
    z = np.array([[1e4, 0.0, -1e4], [800.0, 799.0, 0.0]])
    out = log_softmax(z)
    assert np.all(np.isfinite(out))
    assert out[0, 0] == 0.0
    np.testing.assert_allclose(out[1, :2], [-np.log1p(np.exp(-1.0)), -1 - np.log1p(np.exp(-1.0))])


def test_arrays_are_float64_copies_and_read_only(rng: np.random.Generator) -> None:
    f = rng.normal(size=(10, 2)).astype(np.float32)
    a = SoftmaxModel(f, rng.normal(size=(4, 2)))
    assert a.F.dtype == np.float64
    f[0, 0] = 100.0
    assert a.F[0, 0] != 100.0
    with pytest.raises(ValueError):
        a.F[0, 0] = 1.0


def test_accepts_torch_tensors(rng: np.random.Generator) -> None:
    f, g = rng.normal(size=(12, 3)), rng.normal(size=(5, 3))
    a = SoftmaxModel(torch.from_numpy(f), torch.from_numpy(g))
    np.testing.assert_array_equal(a.F, f)


@pytest.mark.parametrize(
    ("F", "G", "error"),
    [
        (np.ones((10, 2)) + np.arange(20).reshape(10, 2) ** 2, np.eye(3, 3), InputShapeError),
        (np.arange(20.0).reshape(10, 2) ** 2, np.eye(2), InsufficientSamplesError),
        (np.arange(10.0), np.eye(3, 2), InputShapeError),
        (np.full((10, 2), np.nan), np.eye(3, 2), InputValueError),
    ],
    ids=["width mismatch", "K < M+1", "1-D F", "NaN"],
)
def test_validation_errors(F: np.ndarray, G: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        SoftmaxModel(F, G)
    assert issubclass(error, repscope.RepscopeError)


def test_too_few_inputs() -> None:
    with pytest.raises(InsufficientSamplesError, match="n >= M\\+1"):
        SoftmaxModel(np.eye(2), np.eye(3, 2) + 1)


def test_diversity_condition_on_unembeddings(rng: np.random.Generator) -> None:
    direction = rng.normal(size=2)
    g = np.outer(np.arange(5.0), direction) + 1.0  # all displacements are collinear
    with pytest.raises(DiversityConditionError, match="unembeddings"):
        SoftmaxModel(rng.normal(size=(20, 2)), g)
    assert issubclass(DiversityConditionError, DegenerateInputError)


def test_diversity_condition_on_embeddings(rng: np.random.Generator) -> None:
    f = np.outer(rng.normal(size=20), [1.0, 2.0, 0.5]) + 3.0
    with pytest.raises(DiversityConditionError, match="embeddings"):
        SoftmaxModel(f, rng.normal(size=(6, 3)))
    # can be switched off explicitly
    assert SoftmaxModel(f, rng.normal(size=(6, 3)), check_diversity=False).dim == 3


def test_overflowing_logits() -> None:
    f = np.array([[1e200, 0.0], [0.0, 1e200], [1.0, 1.0]])
    g = np.array([[1e200, 0.0], [0.0, 1e200], [-1e200, -1e200]])
    with pytest.raises(NonFiniteResultError):
        SoftmaxModel(f, g).log_likelihoods()


def test_transformed_model_has_the_same_distribution(rng: np.random.Generator) -> None:
    a = _model(rng, m=3)
    A = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    b = a.transformed(A, shift=rng.normal(size=3))
    np.testing.assert_allclose(b.F, a.F @ A.T)
    np.testing.assert_allclose(b.log_likelihoods(), a.log_likelihoods(), atol=1e-10)
    with pytest.raises(DegenerateInputError):
        a.transformed(np.ones((3, 3)))
    with pytest.raises(InputShapeError):
        a.transformed(np.eye(2))
    with pytest.raises(InputShapeError):
        a.transformed(np.eye(3), shift=np.ones(2))


def test_one_hot_codes() -> None:
    c = one_hot_codes(4)
    assert c.shape == (4, 3)
    np.testing.assert_array_equal(c[:3], np.eye(3))
    np.testing.assert_array_equal(c[3], 0.0)
    assert one_hot_codes(4, drop_last=False).shape == (4, 4)
    with pytest.raises(InsufficientSamplesError):
        one_hot_codes(1)


def test_from_torch_runs_modules_in_eval_mode(rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    f_net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.5),
                                torch.nn.Linear(8, 2))
    g_net = torch.nn.Linear(4, 2)
    x = torch.from_numpy(rng.normal(size=(50, 3)).astype(np.float32))
    codes = torch.from_numpy(one_hot_codes(5))
    f_net.train()
    a = SoftmaxModel.from_torch(f_net, g_net, x, codes, batch_size=7)
    assert f_net.training  # mode restored
    f_net.eval()
    with torch.no_grad():
        np.testing.assert_allclose(a.F, f_net(x).double().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.G, g_net(codes).double().numpy(), rtol=1e-5, atol=1e-6)


def test_pair_checks(rng: np.random.Generator) -> None:
    a = _model(rng)
    with pytest.raises(InputShapeError, match="inputs"):
        check_model_pair(a, _model(rng, n=31))
    with pytest.raises(InputShapeError, match="labels"):
        check_model_pair(a, _model(rng, k=7))
    with pytest.raises(InputShapeError, match="dimensions"):
        check_model_pair(a, _model(rng, m=3), same_dim=True)
    with pytest.raises(TypeError):
        check_model_pair(a, a.F)  # type: ignore[arg-type]


def test_index_tuple_validation() -> None:
    assert as_index_tuple([3, 1, 2], 5, 3, "s") == (3, 1, 2)
    assert as_index_tuple(np.array([3.0, 1.0]), 5, 2, "s") == (3, 1)
    for bad in ([1, 1, 2], [1, 2], [0, 1, 9], [0.5, 1, 2]):
        with pytest.raises(InputShapeError):
            as_index_tuple(bad, 5, 3, "s")
