from __future__ import annotations

import numpy as np
import pytest
import torch

import repscope
from repscope.core.validation import as_representation, check_pair, flatten_tokens


def test_promotes_to_float64(rng: np.random.Generator) -> None:
    x = rng.normal(size=(5, 3)).astype(np.float32)
    out = as_representation(x)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, x.astype(np.float64))


def test_integer_input_is_accepted() -> None:
    out = as_representation(np.arange(12).reshape(4, 3))
    assert out.dtype == np.float64


def test_torch_stays_torch_and_keeps_grad() -> None:
    x = torch.randn(6, 2, dtype=torch.float32, requires_grad=True)
    out = as_representation(x)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    out.sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize(
    ("x", "exc", "text"),
    [
        (np.zeros(5), repscope.InputShapeError, "reshape to"),
        (np.zeros((2, 3, 4)), repscope.InputShapeError, "flatten_tokens"),
        (np.zeros((0, 3)), repscope.InputShapeError, "empty"),
        (np.array([[1 + 1j, 2]]), repscope.InputValueError, "complex"),
        (np.array([["a", "b"]]), repscope.InputValueError, "non-numeric"),
        (np.array([[1.0, np.nan]]), repscope.InputValueError, "NaN"),
        (np.array([[1.0, np.inf]]), repscope.InputValueError, "NaN or Inf"),
        (np.ones((3, 2), dtype=bool), repscope.InputValueError, "non-numeric"),
    ],
)
def test_bad_inputs(x: np.ndarray, exc: type, text: str) -> None:
    with pytest.raises(exc, match=text):
        as_representation(x)


def test_bad_torch_inputs() -> None:
    with pytest.raises(repscope.InputValueError, match="complex"):
        as_representation(torch.zeros(3, 2, dtype=torch.complex64))
    with pytest.raises(repscope.InputValueError, match="NaN"):
        as_representation(torch.tensor([[1.0, float("nan")]]))


def test_min_samples() -> None:
    with pytest.raises(repscope.InsufficientSamplesError, match="at least 4"):
        as_representation(np.ones((3, 2)), min_samples=4)


def test_pair_checks(rng: np.random.Generator) -> None:
    x = rng.normal(size=(5, 3))
    with pytest.raises(repscope.InputShapeError, match="same number of samples"):
        check_pair(x, x[:4])
    with pytest.raises(repscope.InputShapeError, match="equal width"):
        check_pair(x, x[:, :2], same_dim=True)
    with pytest.raises(repscope.InputValueError, match="both be NumPy"):
        check_pair(x, torch.from_numpy(x))


def test_errors_are_value_errors() -> None:
    assert issubclass(repscope.RepscopeError, ValueError)
    with pytest.raises(ValueError):
        as_representation(np.zeros(3))


def test_flatten_tokens() -> None:
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    out = flatten_tokens(x)
    assert out.shape == (6, 4)
    np.testing.assert_array_equal(out[3], x[1, 0])
    conv = np.arange(2 * 5 * 2 * 3).reshape(2, 5, 2, 3)  # n, c, h, w
    flat = flatten_tokens(conv)
    assert flat.shape == (12, 5)
    np.testing.assert_array_equal(flat[1], conv[0, :, 0, 1])
    t = flatten_tokens(torch.from_numpy(conv))
    np.testing.assert_array_equal(t.numpy(), flat)
    with pytest.raises(repscope.InputShapeError):
        flatten_tokens(np.zeros((2, 3)))


def test_finite_check_survives_overflowing_sums() -> None:
    """The one-pass check sums the entries; an overflowing sum of finite values is fine."""
    import warnings

    big = np.full((50, 4), 3e38, dtype=np.float32)  # sum overflows float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from the overflow
        assert as_representation(big, cast=False) is big
        as_representation(np.full((3, 2), 1e308))  # float64 overflow, still finite
    for bad in (np.inf, -np.inf, np.nan):
        x = big.copy()
        x[7, 2] = bad
        with pytest.raises(repscope.InputValueError, match="NaN or Inf"):
            as_representation(x, cast=False)
    opposite = np.zeros((4, 2))
    opposite[0, 0], opposite[1, 1] = np.inf, -np.inf  # the sum is NaN, not inf
    with pytest.raises(repscope.InputValueError):
        as_representation(opposite)


def test_not_constant_check_looks_past_equal_first_rows() -> None:
    from repscope.core.validation import check_not_constant

    x = np.ones((6, 3))
    x[5, 1] = 2.0  # rows 0 and 1 equal: the full comparison decides
    check_not_constant(x, "X", "cka")
    with pytest.raises(repscope.DegenerateInputError, match="X is constant"):
        check_not_constant(np.ones((6, 3)), "X", "cka")
    with pytest.raises(repscope.DegenerateInputError):
        check_not_constant(np.ones((1, 3)), "X", "cka")
    check_not_constant(torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 2.0]]), "X", "cka")
