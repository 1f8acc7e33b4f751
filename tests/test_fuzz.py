"""Property-based fuzzing of every registered measure (issue 14, point 10).

Hypothesis draws shapes, dtypes, magnitudes over the whole float64 range (exact
powers of two and powers of ten), constant and duplicated rows, constant
columns, ties (small integers) and NaN/Inf placements.  Every outcome must be

* a repscope error (:class:`repscope.RepscopeError`; never a NumPy, SciPy or
  torch exception), or
* a finite value inside the measure's declared range, and — for a measure
  declaring isotropic-scaling invariance — equal to its value on the unscaled
  inputs: within 1e-9·max(1, |v|) for exact powers of two, and for powers of ten
  within the same tolerance or one flipped tie (:meth:`Measure.tie_resolution`).
  A power of ten rounds the inputs, so its comparison is skipped where the
  measure warns that the inputs are degenerate (:class:`DegeneracyWarning`: rank
  <= 1, d >= n − 1, ...): there the value rests on rounding — e.g. a shape
  distance of exactly 0 is computed as ``arccos(F)`` with ``F = 1 − O(ε)``,
  i.e. ~1e-8 — and exact powers of two still have to give the ×1 value.

Bounded for CI: :data:`EXAMPLES` examples per measure and variant, derandomised
(the same examples on every run).  ``REPSCOPE_FUZZ_EXAMPLES=500`` runs more,
with fresh random draws, to hunt for new failures locally.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import repscope
from repscope.core.errors import DegeneracyWarning, RepscopeError
from repscope.measures.base import Measure
from repscope.measures.metadata import Invariance

#: examples per measure and variant in the default (CI) run
EXAMPLES = int(os.environ.get("REPSCOPE_FUZZ_EXAMPLES", "10"))
_HUNT = "REPSCOPE_FUZZ_EXAMPLES" in os.environ

CASES = [(info.name, variant) for info in repscope.list_measures() for variant in info.variants]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in p.items()) or 'default'}" for n, p in CASES]

DTYPES = ("float64", "float32", "float16", "int64")


@dataclass(frozen=True)
class Case:
    """One fuzz input: the data recipe; arrays are built by :func:`_arrays`."""

    seed: int
    n: int
    dx: int
    dy: int
    data: str  # "normal", "integers" (ties), "line" (rank 1), "offset" (large common offset)
    dtype: str
    scale: tuple[str, int]  # ("one", 0), ("pow2", k) or ("pow10", e)
    rows: str  # "plain", "duplicated", "constant_x", "constant_y"
    column: bool  # a constant column in X
    bad: str  # "none", "nan_x", "inf_y", "ninf_x"


@st.composite
def cases(draw: Any) -> Case:
    kind = draw(st.sampled_from(["one", "pow2", "pow2", "pow10"]))
    exponent = {"one": 0,
                "pow2": draw(st.integers(-1074, 1023)),
                "pow10": draw(st.integers(-320, 308))}[kind]
    return Case(
        seed=draw(st.integers(0, 2**31 - 1)),
        n=draw(st.integers(1, 40)),
        dx=draw(st.integers(1, 7)),
        dy=draw(st.integers(1, 7)),
        data=draw(st.sampled_from(["normal", "normal", "integers", "line", "offset"])),
        dtype=draw(st.sampled_from(DTYPES)),
        scale=(kind, exponent),
        rows=draw(st.sampled_from(["plain", "plain", "duplicated", "constant_x",
                                   "constant_y"])),
        column=draw(st.booleans()),
        bad=draw(st.sampled_from(["none", "none", "none", "nan_x", "inf_y", "ninf_x"])),
    )


def _base(c: Case, m: Measure) -> tuple[np.ndarray, np.ndarray]:
    """Unscaled float64 data of the case (equal widths where the measure needs them)."""
    rng = np.random.default_rng(c.seed)
    dy = c.dx if m.info.same_dim else c.dy
    if c.data == "integers":
        x, y = rng.integers(0, 3, size=(c.n, c.dx)), rng.integers(0, 3, size=(c.n, dy))
        x, y = x.astype(np.float64), y.astype(np.float64)
    elif c.data == "line":
        x = np.outer(rng.normal(size=c.n), rng.normal(size=c.dx))
        y = rng.normal(size=(c.n, dy))
    else:
        x, y = rng.normal(size=(c.n, c.dx)), rng.normal(size=(c.n, dy))
        if c.data == "offset":
            x = x + 1e6
    if c.rows == "duplicated" and c.n > 1:
        src = rng.integers(0, c.n, size=c.n // 2)
        dst = rng.choice(c.n, size=c.n // 2, replace=False)
        x[dst], y[dst] = x[src], y[src]
    elif c.rows == "constant_x":
        x[:] = x[0]
    elif c.rows == "constant_y":
        y[:] = y[0]
    if c.column:
        x[:, 0] = 2.5
    return x, y


def _scaled(a: np.ndarray, c: Case) -> np.ndarray:
    kind, e = c.scale
    if kind == "pow2":
        return np.ldexp(a, e)
    if kind == "pow10":
        with np.errstate(over="ignore", under="ignore"):
            return a * 10.0**e if e >= -307 else a * 1e-300 * 10.0 ** (e + 300)
    return a


def _cast(a: np.ndarray, dtype: str) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if dtype == "int64":
            return np.round(a).astype(np.int64) if np.all(np.abs(a) < 2.0**62) else a
        return a.astype(dtype)


def _spoil(x: np.ndarray, y: np.ndarray, c: Case) -> tuple[np.ndarray, np.ndarray]:
    """Put a NaN or an infinity into X or Y (floating arrays only)."""
    if c.bad == "none":
        return x, y
    target = y if c.bad == "inf_y" else x
    if not np.issubdtype(target.dtype, np.floating):
        return x, y
    target = target.copy()
    target[c.seed % target.shape[0], c.seed % target.shape[1]] = {
        "nan_x": np.nan, "ninf_x": -np.inf, "inf_y": np.inf}[c.bad]
    return (x, target) if c.bad == "inf_y" else (target, y)


def _outcome(m: Measure, x: np.ndarray, y: np.ndarray,
             degenerate: list[bool] | None = None) -> float | RepscopeError:
    """The value, or the repscope error; anything else fails the test.  ``degenerate``
    records whether the measure warned that the inputs are degenerate."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always", DegeneracyWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return m(x, y)
        except RepscopeError as e:
            return e
        finally:
            if degenerate is not None:
                degenerate.append(any(issubclass(w.category, DegeneracyWarning)
                                      for w in caught))


def _measure(name: str, variant: dict, n: int) -> Measure:
    extra = repscope.measure_class(name).example_params(max(n, 1), np.random.default_rng(n))
    return repscope.measure(name, **{**extra, **variant})


def _check(name: str, variant: dict, c: Case) -> None:
    _check_with(_measure(name, variant, c.n), c)


def _check_with(m: Measure, c: Case) -> None:
    name, variant = m.info.name, m.params
    x1, y1 = _base(c, m)
    xs, ys = _cast(_scaled(x1, c), c.dtype), _cast(_scaled(y1, c), c.dtype)
    xs, ys = _spoil(xs, ys, c)
    degenerate: list[bool] = []
    out = _outcome(m, xs, ys, degenerate)
    if isinstance(out, RepscopeError):
        return
    lo, hi = m.info.value_range
    assert math.isfinite(out) and lo - 1e-9 <= out <= hi + 1e-9, (
        f"{name} {variant}: value {out} outside [{lo}, {hi}] for {c}")
    if Invariance.ISOTROPIC_SCALING not in m.invariances or c.scale[0] == "one":
        return
    # the same values at unit scale, in the same dtype: compare where the scaled input is
    # exactly the scaled values (no overflow, underflow or rounding by the cast)
    kind, e = c.scale
    xu, yu = _cast(x1, c.dtype), _cast(y1, c.dtype)
    if kind == "pow2":
        exact = all(
            np.issubdtype(s.dtype, np.floating) and np.array_equal(
                np.ldexp(s.astype(np.float64), -e), u.astype(np.float64))
            for s, u in ((xs, xu), (ys, yu))
        )
        if not exact:
            return
    elif not (xs.dtype == ys.dtype == np.float64  # lower precisions round unit and scaled
              and np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))  # values differently
              and _relative_ok(xs, xu, e) and _relative_ok(ys, yu, e)):
        return
    ref = _outcome(m, xu, yu, degenerate)
    if kind == "pow10" and any(degenerate):
        return  # a warned, degenerate regime: its value rests on rounding (see module doc)
    tol = 1e-9 * max(1.0, abs(out) if isinstance(ref, RepscopeError) else abs(ref))
    if kind == "pow10":
        tol = max(tol, m.tie_resolution(c.n) * (1 + 1e-9))
    assert not isinstance(ref, RepscopeError), (
        f"{name} {variant}: {out} for the scaled inputs but {type(ref).__name__}: {ref} at unit "
        f"scale, {c}")
    assert abs(out - ref) <= tol, (
        f"{name} {variant}: {out} for the scaled inputs, {ref} at unit scale, {c}")


def _relative_ok(scaled: np.ndarray, unit: np.ndarray, e: int) -> bool:
    """Whether ``scaled`` is ``unit · 10ᵉ`` up to one rounding per entry (no subnormals)."""
    s, u = scaled.astype(np.float64), unit.astype(np.float64)
    if not np.any(u):
        return True
    tiny = np.finfo(scaled.dtype).tiny
    nz = u != 0
    if np.any(np.abs(s[nz]) < tiny):
        return False  # subnormal or flushed to zero: digits lost
    with np.errstate(over="ignore", under="ignore"):
        want = u * 10.0**e if e >= -307 else u * 1e-300 * 10.0 ** (e + 300)
    eps = np.finfo(scaled.dtype).eps
    return bool(np.all(np.abs(s - want) <= 2 * eps * np.abs(want)))


_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=not _HUNT, database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize(("name", "variant"), CASES, ids=IDS)
@given(case=cases())
@_SETTINGS
def test_fuzz_measure(name: str, variant: dict, case: Case) -> None:
    _check(name, variant, case)


def test_fuzz_covers_every_measure_and_catches_a_wrong_value() -> None:
    """The check itself: every registered measure is fuzzed, and a measure that returns a
    wrong value at an extreme scale (NBS without the unit scale at entry, as on main) fails."""
    assert {n for n, _ in CASES} == {i.name for i in repscope.list_measures()}
    nbs = type(repscope.measure("nbs"))

    class Unscaled(nbs):  # type: ignore[misc, valid-type]
        info = dataclasses.replace(nbs.info, magnitude_range=(1e-300, 1e300))

        @property
        def normalises(self) -> bool:
            return False

    case = Case(seed=1, n=12, dx=3, dy=3, data="normal", dtype="float64", scale=("pow2", -332),
                rows="plain", column=False, bad="none")
    _check_with(repscope.measure("nbs"), case)
    with pytest.raises(AssertionError, match="at unit scale"):
        _check_with(Unscaled(), case)
