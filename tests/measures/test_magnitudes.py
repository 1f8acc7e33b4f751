"""Magnitude safety and numerical errors of every measure (issue 14, points 1 and 2).

Scale-invariant measures bring each representation to unit scale at entry (an
exact power of two), so extreme magnitudes give the ×1 value; the others accept
the magnitudes of ``info.magnitude_range`` and raise outside it; exceptions of
numerical libraries surface as :class:`NumericalError` naming the measure.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import repscope
from repscope.core.arrays import namespace
from repscope.core.errors import (
    DegeneracyWarning,
    InputValueError,
    NumericalError,
    RepscopeError,
)
from repscope.core.validation import FLOAT32_NORMAL_RANGE, check_magnitude, unit_scale
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import Invariance, MeasureInfo
from repscope.measures.moments import SecondMoments
from repscope.testing import check_measure

SCALE = Invariance.ISOTROPIC_SCALING


def _unrelated(info: MeasureInfo, n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unrelated X, Y (n × 6, n × 5; equal widths where needed; logits for functional)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    if info.input_kind == "logits":
        return x, x + rng.normal(size=x.shape)
    return x, rng.normal(size=(n, 6 if info.same_dim else 5))


def _measure(name: str, n: int = 40) -> Measure:
    extra = repscope.measure_class(name).example_params(n, np.random.default_rng(0))
    return repscope.measure(name, **extra)


def _value(m: Measure, x: Any, y: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        return m(x, y)


# ------------------------------------------------------------ unit scale
@pytest.mark.parametrize("e", [-1070, -500, -1, 0, 1, 3, 500, 1020])
def test_unit_scale_is_an_exact_power_of_two(e: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 3))
    x[0, 0] = 0.75  # the largest magnitude
    x = np.clip(x, -0.7, 0.7)
    x[0, 0] = 0.75
    big = np.ldexp(x, e)
    out, k = unit_scale(big)
    assert np.max(np.abs(out)) == 0.75 and k == e
    if e > -1020:  # subnormal inputs have lost digits already; others come back exactly
        assert np.array_equal(out, x)
    if k == 0:
        assert out is big  # no copy


def test_unit_scale_float32_torch_and_zero() -> None:
    x = np.array([[3.0, -1e-3], [2.0**-140, 0.5]], dtype=np.float32)
    out, k = unit_scale(x * np.float32(2.0**100))
    assert out.dtype == np.float32 and k == 102
    assert np.array_equal(out, x / np.float32(4.0))
    t = torch.tensor([[1e-300, -3e-301]], dtype=torch.float64, requires_grad=True)
    out, k = unit_scale(t)
    assert out.requires_grad and 0.5 <= float(out.abs().max()) < 1.0
    out.sum().backward()
    assert float(t.grad[0, 0]) == 2.0 ** (-k)  # the exact factor, as a constant
    z = np.zeros((3, 2))
    assert unit_scale(z)[0] is z


def test_check_magnitude_names_the_range() -> None:
    x = np.ones((3, 2))
    check_magnitude(x, "X", "hsic", FLOAT32_NORMAL_RANGE)
    check_magnitude(np.zeros((3, 2)), "X", "hsic", FLOAT32_NORMAL_RANGE)  # no magnitude
    with pytest.raises(InputValueError, match=r"Y's largest magnitude 1e\+40 .* hsic"):
        check_magnitude(x * 1e40, "Y", "hsic", FLOAT32_NORMAL_RANGE)
    with pytest.raises(InputValueError, match="outside the range"):
        check_magnitude(x * 1e-40, "X", "hsic", FLOAT32_NORMAL_RANGE)


# ------------------------------------------- the wrong values of issue 14
#: (measure, scale) pairs that returned a wrong value for unrelated data on main
WRONG_BEFORE = [
    ("mutual_knn", 1e-200), ("knn_jaccard", 1e-200), ("rank_similarity", 1e-200),
    ("information_imbalance", 1e-200), ("cycle_knn", 1e-200),
    ("distance_correlation", 1e80), ("permutation_procrustes", 1e80),
    ("procrustes", 1e-100), ("procrustes_angular", 1e-100), ("nbs", 1e-100),
    ("gulp", 1e200), ("m_svd", 1e200), ("uniformity_difference", 1e200),
    ("cluster_mutual_information", 1e200), ("mutual_knn", 1e200),
    ("m_svd", 1e-15),
]


@pytest.mark.parametrize(("name", "scale"), WRONG_BEFORE)
def test_extreme_magnitudes_give_the_unit_value(name: str, scale: float) -> None:
    m = _measure(name)
    x, y = _unrelated(m.info)
    base = _value(m, x, y)
    v = _value(m, x * scale, y * scale)
    tol = max(1e-9 * max(1.0, abs(base)), m.tie_resolution(x.shape[0]))
    assert abs(v - base) <= tol, f"{name} at x{scale:g}: {v} instead of {base}"


def test_cluster_mutual_information_is_not_one_for_unrelated_data_at_1e200() -> None:
    m = _measure("cluster_mutual_information")
    x, y = _unrelated(m.info)
    assert _value(m, x * 1e200, y * 1e200) < 0.5


# ---------------------------------- no library exception, at any magnitude
EXTREMES = [1e-300, 1e-200, 1e-100, 1e80, 1e200, 1e300, 2.0**-500, 2.0**500]


@pytest.mark.parametrize("name", [i.name for i in repscope.list_measures()])
def test_every_measure_at_extreme_magnitudes(name: str) -> None:
    """A value equal to the ×1 value (scale-invariant measures) or a repscope error, never a
    NumPy/SciPy exception (17 of them on main: LinAlgError, a bare ValueError)."""
    m = _measure(name)
    x, y = _unrelated(m.info)
    base = _value(m, x, y)
    tol = max(1e-9 * max(1.0, abs(base)), m.tie_resolution(x.shape[0]))
    for s in EXTREMES:
        if SCALE in m.invariances:
            v = _value(m, x * s, y * s)  # no error either: unit scale at entry
            assert abs(v - base) <= tol, f"{name} at x{s:g}: {v} instead of {base}"
        else:
            lo, hi = m.info.magnitude_range
            try:
                v = _value(m, x * s, y * s)
            except InputValueError as e:
                assert "outside the range" in str(e)
                assert not lo <= s * float(np.max(np.abs(x))) <= hi
            else:
                assert math.isfinite(v)


# ------------------------------------------------------- numerical errors
class _Failing(Measure):
    """Raises a library exception while preparing or comparing (``where``)."""

    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_failing", family="custom", kind="similarity", value_range=(0.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", min_samples=3, params={"where": "compare", "error": "linalg"},
    )

    def _raise(self) -> None:
        kind = self.params["error"]
        if kind == "linalg":
            np.linalg.eigvalsh(np.array([[np.nan, 0.0], [0.0, 1.0]]))
            raise np.linalg.LinAlgError("Eigenvalues did not converge")  # pragma: no cover
        if kind == "scipy":
            linear_sum_assignment(np.array([[np.nan, 1.0], [1.0, 0.0]]))
        if kind == "torch":
            torch.linalg.cholesky(-torch.eye(2, dtype=torch.float64))
        if kind == "zero":
            _ = 1 / 0

    def _prepare(self, p: Prepared) -> None:
        if self.params["where"] == "prepare":
            self._raise()

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        self._raise()
        return 0.5


@pytest.mark.parametrize("error", ["linalg", "scipy", "torch", "zero"])
@pytest.mark.parametrize("where", ["prepare", "compare"])
def test_library_exceptions_become_numerical_errors(where: str, error: str) -> None:
    m = _Failing(where=where, error=error)
    x = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(NumericalError, match="_failing: a numerical routine failed") as info:
        m(x, x)
    text = str(info.value)
    assert ("preparing X" if where == "prepare" else "comparing X and Y") in text
    cause = info.value.__cause__
    assert cause is not None and type(cause).__name__ in text
    assert isinstance(info.value, RepscopeError)


def test_numerical_errors_are_recorded_in_result_rows() -> None:
    x = np.random.default_rng(0).normal(size=(6, 2))
    row = repscope.compare(x, x, [_Failing(error="scipy")], chance=False)[0]
    assert row["value"] is None and row["error"].startswith("NumericalError: _failing")


def test_from_moments_at_extreme_magnitudes() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    for name in ("procrustes", "nbs", "mean_cca", "cka", "svcca"):
        m = repscope.measure(name)
        base = m(x, y)
        for k in (-480, 480):
            mom = SecondMoments.from_arrays(np.ldexp(x, k), np.ldexp(y, k))
            assert float(m.from_moments(mom)) == pytest.approx(base, rel=1e-12, abs=1e-14)
    mom = SecondMoments.from_arrays(x, y)
    mom.sxy = mom.sxy * np.inf
    with pytest.raises(InputValueError, match="not finite"):
        repscope.measure("cka").from_moments(mom)


def test_measures_sharing_prepared_inputs_agree_on_unit_scale() -> None:
    """Equal prepare keys imply equal scaling (a grid shares prepared objects by key)."""
    by_key: dict[Any, set[bool]] = {}
    for info in repscope.list_measures():
        cls = repscope.measure_class(info.name)
        extra = cls.example_params(12, np.random.default_rng(0))
        for variant in info.variants:
            m = repscope.measure(info.name, **{**extra, **variant})
            key = m.prepare_key()
            try:
                by_key.setdefault(key, set()).add(m.normalises)
            except TypeError:  # unhashable keys are never shared
                continue
    assert all(len(v) == 1 for v in by_key.values())
    assert any(True in v for v in by_key.values()) and any(False in v for v in by_key.values())


# ------------------------------------------------------ check_measure
class _Cosine(Measure):
    """Cosine of the centred, flattened representations (equal widths), a toy measure."""

    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_cosine", family="custom", kind="similarity", value_range=(-1.0, 1.0),
        symmetric=True, metric=False,
        invariances=frozenset({Invariance.ISOTROPIC_SCALING, Invariance.TRANSLATION,
                               Invariance.PERMUTATION}),
        assumptions="toy", reference="test", same_dim=True,
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        xp = namespace(px.data)
        x = px.data - xp.mean(px.data, axis=0)
        y = py.data - xp.mean(py.data, axis=0)
        return xp.mean(x * y) / xp.sqrt(xp.mean(x * x) * xp.mean(y * y))


class _UnscaledCosine(_Cosine):
    """The same, without the unit scale at entry: squares overflow at 2^500."""

    @property
    def normalises(self) -> bool:
        return False

    info: ClassVar[MeasureInfo] = MeasureInfo(
        **{**_Cosine.info.__dict__, "magnitude_range": (1e-300, 1e300)},
    )


class _Energy(Measure):
    """``‖X‖²_F ‖Y‖²_F / n²`` (homogeneous of degree 4), claiming a too wide range."""

    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_energy", family="custom", kind="similarity", value_range=(0.0, math.inf),
        symmetric=True, metric=False, invariances=frozenset({Invariance.PERMUTATION,
                                                             Invariance.ORTHOGONAL}),
        assumptions="toy", reference="test", magnitude_range=(1e-200, 1e200),
        identity_value=float("nan"),
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        xp = namespace(px.data)
        return xp.sum(px.data**2) * xp.sum(py.data**2) / px.n**2


def test_check_measure_magnitudes_passes_unit_scaled_measures() -> None:
    assert check_measure(_Cosine(), checks=["magnitudes"]).ok


def test_check_measure_catches_overflow_of_a_scale_invariant_measure() -> None:
    report = check_measure(_UnscaledCosine(), checks=["magnitudes"], raise_on_failure=False)
    assert "2^500" in report.failures["magnitudes"]


def test_check_measure_catches_a_too_wide_magnitude_range() -> None:
    report = check_measure(_Energy(), checks=["magnitudes"], raise_on_failure=False)
    assert "inside magnitude_range" in report.failures["magnitudes"]
    narrow = type("Narrow", (_Energy,), {"info": MeasureInfo(
        **{**_Energy.info.__dict__, "magnitude_range": (1e-50, 1e50)})})
    assert check_measure(narrow(), checks=["magnitudes"]).ok


# ------------------------------------------------ ties under inexact scalings
TIED = ["mutual_knn", "knn_jaccard", "cycle_knn", "rank_similarity", "cknna",
        "second_order_cosine", "information_imbalance", "cluster_mutual_information"]


@pytest.mark.parametrize("name", TIED)
def test_ties_of_discrete_data_survive_powers_of_ten(name: str) -> None:
    """Small-integer data tie many distances exactly; rounding noise of a rescaling by a
    power of ten used to break those ties differently (found by the fuzz test)."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, size=(26, 5)).astype(float)
    y = rng.integers(0, 3, size=(26, 5)).astype(float)
    m = repscope.measure(name, **({} if name == "cluster_mutual_information" else {"k": 4}))
    base = _value(m, x, y)
    for e in (-36, -3, 1, 7, 109):
        assert _value(m, x * 10.0**e, y * 10.0**e) == pytest.approx(base, abs=1e-12), (name, e)


def test_equidistant_samples_tie_at_every_scale() -> None:
    y = np.random.default_rng(0).normal(size=(6, 3))
    m = repscope.measure("mutual_knn", k=2)
    assert {_value(m, np.eye(6) * s, y) for s in (1.0, 3.0, 1e-5, 0.1)} == {_value(m, np.eye(6),
                                                                                  y)}


@pytest.mark.parametrize("compare", ["spearman", "kendall", "pearson", "cosine"])
@pytest.mark.parametrize("rdm", ["euclidean", "sqeuclidean", "correlation", "cosine"])
def test_rsa_ties_survive_powers_of_ten(rdm: str, compare: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(16, 4)).astype(float) + 1.0
    y = rng.integers(0, 3, size=(16, 4)).astype(float) + 1.0
    m = repscope.measure("rsa", rdm=rdm, compare=compare)
    base = _value(m, x, y)
    for e in (-205, -3, 1, 155):
        assert _value(m, x * 10.0**e, y * 10.0**e) == pytest.approx(base, abs=1e-12)


def test_cosine_rdm_of_nearly_parallel_rows_keeps_its_digits() -> None:
    """1 − cos(u, v) lost every digit below ε; ‖û − v̂‖²/2 keeps them (reference: 50 digits)."""
    from decimal import Decimal, getcontext

    from repscope.measures.rsa import rdm_vector

    getcontext().prec = 50
    rng = np.random.default_rng(6)
    x = 1e6 + rng.normal(size=(5, 3))
    got = rdm_vector(x, "cosine")

    def cos_dist(u: np.ndarray, v: np.ndarray) -> float:
        du, dv = [Decimal(float(a)) for a in u], [Decimal(float(b)) for b in v]
        dot = sum(a * b for a, b in zip(du, dv))
        nu, nv = sum(a * a for a in du).sqrt(), sum(b * b for b in dv).sqrt()
        return float(1 - dot / (nu * nv))

    want = [cos_dist(x[i], x[j]) for i in range(5) for j in range(i + 1, 5)]
    assert np.allclose(got, want, rtol=1e-6, atol=0)


def test_m_svd_constant_columns_are_decided_relative_to_each_column() -> None:
    """m_svd called random data "constant" at ×1e-15 (an absolute floor of 1e-13); a column is
    now constant only relative to its own magnitude, and each column is standardised at its
    own scale (m_svd is invariant to rescaling single columns)."""
    from repscope.measures.m_svd import m_svd, standardize

    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    m = repscope.measure("m_svd")
    base = m(x, y)
    tiny = x.copy()
    tiny[:, 1] *= 1e-150  # 1e300 of dynamic range: still normal numbers at unit scale
    tiny[:, 2] *= 1e150
    for xx in (x * 1e-15, tiny):
        assert m(xx, y) == pytest.approx(base, rel=1e-12)
        assert m(torch.from_numpy(xx), torch.from_numpy(y)) == pytest.approx(base, rel=1e-12)
        assert m_svd(xx, y) == pytest.approx(base, rel=1e-12)
        assert np.allclose(standardize(xx), standardize(x), rtol=1e-12, atol=1e-12)
    flat = x.copy()
    flat[:, 3] = 1e-300 * (1.0 + 1e-15 * rng.normal(size=30))  # spread below rounding
    with pytest.raises(repscope.DegenerateInputError, match=r"column\(s\) \[3\]"):
        m(flat, y)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_grids_at_extreme_magnitudes_equal_single_pair_calls(dtype: str) -> None:
    """Unit scale at entry keeps the shared centred data, cross products and float32 GEMMs
    of a grid equal to single-pair calls (to 1e-12), at any magnitude."""
    rng = np.random.default_rng(9)
    z = rng.normal(size=(50, 3))
    k = 400 if dtype == "float64" else 100
    reps = {("a", e): np.ldexp(np.tanh(z @ rng.normal(size=(3, 6))), e).astype(dtype)
            for e in (-k, 0, k)}
    reps |= {("b", e): np.ldexp(z @ rng.normal(size=(3, 5)) + 0.3 * rng.normal(size=(50, 5)),
                                e).astype(dtype) for e in (-k, k)}
    measures = ["cka", "nbs", "procrustes", "mean_cca", "linear_regression", "hsic", "rsa"]
    table = repscope.grid(reps, measures)
    seen = 0
    for r in table:
        x, y = reps[(r["model_a"], r["layer_a"])], reps[(r["model_b"], r["layer_b"])]
        try:
            single = _value(repscope.measure(r["measure"], **r["params"]), x, y)
        except InputValueError:  # linear HSIC is in the data's units: refused out of range
            assert r["measure"] == "hsic" and "outside the range" in r["error"]
            continue
        assert r["value"] == pytest.approx(single, rel=1e-12, abs=1e-14), r["measure"]
        seen += 1
    assert seen >= 6 * 6


def test_float32_paths_at_extreme_magnitudes() -> None:
    """float32 GEMMs run on unit-scaled data (CKA, NBS) or, in the data's units (linear HSIC),
    only where float32 products are exact to 1e-7; elsewhere the float64 path is taken and
    float32-GEMM statistics are refused."""
    from repscope.engine import streaming

    rng = np.random.default_rng(10)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = (x[:, :5] + rng.normal(size=(300, 5))).astype(np.float32)
    for k in (-120, -60, 60, 100):
        xs, ys = np.ldexp(x, k), np.ldexp(y, k)  # exact in float32
        for name in ("cka", "nbs", "procrustes"):
            m = repscope.measure(name)
            assert m(xs, ys) == pytest.approx(m(x, y), rel=1e-12)
        hsic = repscope.measure("hsic")
        want = hsic(xs.astype(np.float64), ys.astype(np.float64))
        assert want == pytest.approx(math.ldexp(hsic(x, y), 4 * k), rel=1e-6)
        assert hsic(xs, ys) == pytest.approx(want, rel=1e-6)
        try:
            mom = streaming.moments(xs, ys, measures=["cka"])
        except InputValueError:
            continue  # the float32 chunk products overflowed: refused as not finite
        if mom.precision == "mixed":
            with pytest.raises(InputValueError, match="precision='float64'"):
                repscope.measure("cka").from_moments(mom)
