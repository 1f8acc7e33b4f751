"""The same measures on CUDA tensors (skipped without a GPU).

Every array-API measure must run natively on CUDA (the result stays a CUDA
tensor: no round trip through NumPy), agree with the NumPy answer, give the
float64 answer for float32 input, and keep gradients where it declares them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import repscope
from repscope.testing import example_pair

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CASES = [
    (info.name, variant)
    for info in repscope.list_measures()
    for variant in info.variants
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items()) or 'default'}" for n, p in CASES]


def _measure(name: str, variant: dict):
    cls = repscope.measure_class(name)
    return repscope.measure(name, **{**cls.example_params(48, np.random.default_rng(0)),
                                     **variant})


@pytest.mark.parametrize(("name", "variant"), CASES, ids=IDS)
def test_measure_on_cuda_matches_numpy(name: str, variant: dict) -> None:
    m = _measure(name, variant)
    x, y = example_pair(m, np.random.default_rng(7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", repscope.DegeneracyWarning)
        ref = m(x, y)
        for dtype in (torch.float64, torch.float32):
            tx = torch.tensor(x, dtype=dtype, device="cuda")
            ty = torch.tensor(y, dtype=dtype, device="cuda")
            out = m.compute(tx, ty)
            if m.backend == "array_api":
                assert isinstance(out, torch.Tensor) and out.is_cuda
            want = ref if dtype == torch.float64 else m(x.astype(np.float32),
                                                       y.astype(np.float32))
            assert float(out) == pytest.approx(want, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("name", ["cka", "mean_cca", "procrustes", "linear_regression",
                                  "shape_metric", "nbs"])
def test_gradients_on_cuda(name: str) -> None:
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(64, 5)), device="cuda", requires_grad=True)
    y = torch.tensor(rng.normal(size=(64, 4)), device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", repscope.DegeneracyWarning)
        repscope.measure(name).compute(x, y).backward()
    assert x.grad is not None and x.grad.is_cuda and bool(torch.isfinite(x.grad).all())


def test_streaming_moments_on_cuda() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5000, 64)), rng.normal(size=(5000, 32))
    y[:, :8] += x[:, :8]
    tx = torch.tensor(x, dtype=torch.float32, device="cuda")
    ty = torch.tensor(y, dtype=torch.float32, device="cuda")
    mom = repscope.SecondMoments.from_arrays(tx[:2000], ty[:2000]).merge(
        repscope.SecondMoments.from_arrays(tx[2000:], ty[2000:]))
    assert mom.sxy.is_cuda
    cka = repscope.measure("cka")
    assert float(cka.from_moments(mom)) == pytest.approx(
        cka(x.astype(np.float32), y.astype(np.float32)), rel=1e-7)
