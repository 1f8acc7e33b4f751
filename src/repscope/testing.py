"""Conformance checks for any measure, built-in or your own.

:func:`check_measure` runs every property a measure's metadata promises:

* each declared invariance holds under random transforms of one argument (of
  either argument for asymmetric measures), and
  each invariance **not** declared fails on some input (two-way tests);
* symmetry (and asymmetry when not declared symmetric);
* identity: ``m(X, X)`` is the declared identity value;
* values stay inside the declared range;
* the triangle inequality for metrics;
* NumPy and torch inputs agree, and torch stays torch for array-API measures;
* float32/float16 inputs give the float64 answer on the same values;
* extreme magnitudes: a scale-invariant measure gives its ×1 value for inputs
  scaled by powers of two across the float64 range (2^±500, within
  1e-9·max(1, |v|)) and by powers of ten (the same, or one flipped tie,
  :meth:`Measure.tie_resolution`), or raises a repscope error; any other
  measure raises outside its ``magnitude_range`` and, where it is homogeneous
  (``m(2X, 2Y) = 2^p m(X, Y)``), keeps that law up to the edges of the range;
* every bad input raises the right :class:`repscope.RepscopeError`;
* repeated calls are deterministic.

Example::

    from repscope.testing import check_measure
    report = check_measure(my_measure)          # raises AssertionError on failure
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repscope.core.errors import (
    DegeneracyWarning,
    DegenerateInputError,
    InputShapeError,
    InputValueError,
    InsufficientSamplesError,
    RepscopeError,
)
from repscope.measures.base import Measure
from repscope.measures.metadata import Invariance
from repscope.measures.registry import measure as _lookup

__all__ = [
    "ALL_CHECKS",
    "CheckReport",
    "apply_invariance",
    "break_invariance",
    "check_measure",
    "example_pair",
]

RTOL = 1e-6


def _close(a: float, b: float, rtol: float = RTOL, atol: float = 1e-9) -> bool:
    return abs(a - b) <= atol + rtol * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------- test data
def example_pair(
    m: Measure, rng: np.random.Generator, n: int = 48, dx: int = 6, dy: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """A related but not trivially related pair suited to ``m``'s input kind."""
    if m.info.same_dim:
        dy = dx
    z = rng.normal(size=(n, 4)) * np.array([3.0, 1.5, 1.0, 0.5])
    if m.info.input_kind == "logits":
        k = max(dx, 3)
        x = z @ rng.normal(size=(4, k)) + 0.5 * rng.normal(size=(n, k))
        y = x + 1.5 * rng.normal(size=(n, k))
        return x, y
    x = z @ rng.normal(size=(4, dx)) + 0.3 * rng.normal(size=(n, dx)) + rng.normal(size=dx)
    y = np.tanh(z @ rng.normal(size=(4, dy)) / 2) * 2 + 0.3 * rng.normal(size=(n, dy))
    return x, y


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def apply_invariance(inv: Invariance, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random transform of ``y`` in the class ``inv`` (applied to columns)."""
    d = y.shape[1]
    if inv is Invariance.PERMUTATION:
        return y[:, rng.permutation(d)]
    if inv is Invariance.ORTHOGONAL:
        return y @ _orthogonal(d, rng)
    if inv is Invariance.ISOTROPIC_SCALING:
        return y * rng.uniform(0.2, 5.0)
    if inv is Invariance.TRANSLATION:
        return y + rng.normal(scale=3.0, size=d)
    a = _orthogonal(d, rng) @ np.diag(rng.uniform(0.3, 3.0, size=d)) @ _orthogonal(d, rng)
    if inv is Invariance.INVERTIBLE_LINEAR:
        return y @ a
    if inv is Invariance.AFFINE:
        return y @ a + rng.normal(scale=3.0, size=d)
    raise ValueError(inv)  # pragma: no cover


def break_invariance(
    inv: Invariance, y: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A strong transform in class ``inv``, used to show a measure is *not* invariant."""
    d = y.shape[1]
    if inv is Invariance.PERMUTATION:
        perm = np.roll(np.arange(d), 1 + int(rng.integers(max(d - 1, 1))))
        return y[:, perm]
    if inv is Invariance.ORTHOGONAL:
        return y @ _orthogonal(d, rng)
    if inv is Invariance.ISOTROPIC_SCALING:
        return y * float(rng.choice([0.1, 7.0]))
    if inv is Invariance.TRANSLATION:
        return y + rng.normal(scale=5.0, size=d)
    a = _orthogonal(d, rng) @ np.diag(np.geomspace(0.05, 8.0, d)) @ _orthogonal(d, rng)
    if inv is Invariance.INVERTIBLE_LINEAR:
        return y @ a
    if inv is Invariance.AFFINE:
        return y @ a + rng.normal(scale=5.0, size=d)
    raise ValueError(inv)  # pragma: no cover


# ------------------------------------------------------------------ report
@dataclass
class CheckReport:
    """Outcome of :func:`check_measure`: check name -> ``"ok"``, ``"skipped: …"`` or failure."""

    measure: str
    params: dict[str, Any]
    results: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> dict[str, str]:
        return {
            k: v for k, v in self.results.items() if v != "ok" and not v.startswith("skipped")
        }

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        lines = [f"{self.measure} {self.params}:"]
        lines += [f"  {k}: {v}" for k, v in self.results.items()]
        return "\n".join(lines)


class _Skip(Exception):
    pass


def _value(m: Measure, x: Any, y: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        return m(x, y)


def _check_identity(m: Measure, rng: np.random.Generator) -> None:
    ident = m.info.identity
    if math.isnan(ident):
        raise _Skip("no fixed identity value declared")
    x, _ = example_pair(m, rng)
    v = _value(m, x, x)
    assert _close(v, ident, rtol=1e-6, atol=1e-7), f"m(X, X) = {v}, declared identity {ident}"


def _check_symmetry(m: Measure, rng: np.random.Generator) -> None:
    if m.info.symmetric:
        for _ in range(3):
            x, y = example_pair(m, rng)
            a, b = _value(m, x, y), _value(m, y, x)
            assert _close(a, b), f"declared symmetric but m(X,Y)={a} != m(Y,X)={b}"
        return
    for _ in range(5):
        x, y = example_pair(m, rng)
        if not _close(_value(m, x, y), _value(m, y, x), rtol=1e-4):
            return
    raise AssertionError("declared asymmetric but m(X,Y) == m(Y,X) on every input tried")


def _check_range(m: Measure, rng: np.random.Generator) -> None:
    lo, hi = m.info.value_range
    for i in range(6):
        x, y = example_pair(m, rng)
        if i % 2:
            y = rng.normal(size=y.shape)  # unrelated pair
        v = _value(m, x, y)
        assert lo - 1e-9 <= v <= hi + 1e-9, f"value {v} outside declared range [{lo}, {hi}]"


def _transformed(
    m: Measure, x: np.ndarray, y: np.ndarray, t: Callable[[np.ndarray], np.ndarray], side: int
) -> float:
    return _value(m, t(x), y) if side == 0 else _value(m, x, t(y))


def _sides(m: Measure) -> tuple[int, ...]:
    """Symmetric measures: transforming Y suffices; asymmetric ones are checked on both sides."""
    return (1,) if m.info.symmetric else (0, 1)


def _check_invariances(m: Measure, rng: np.random.Generator) -> None:
    for inv in sorted(m.invariances, key=lambda i: i.value):
        for side in _sides(m):
            for _ in range(3):
                x, y = example_pair(m, rng)
                a = _value(m, x, y)
                b = _transformed(m, x, y, lambda z, inv=inv: apply_invariance(inv, z, rng), side)
                assert _close(a, b, rtol=1e-6, atol=1e-8), (
                    f"declared invariant to {inv.value} but value moved {a} -> {b} when "
                    f"transforming {'XY'[side]}"
                )


def _check_non_invariances(m: Measure, rng: np.random.Generator) -> None:
    missing = [i for i in Invariance if i not in m.invariances]
    for inv in missing:
        for trial in range(8):
            x, y = example_pair(m, rng)
            a = _value(m, x, y)
            side = _sides(m)[trial % len(_sides(m))]
            b = _transformed(m, x, y, lambda z, inv=inv: break_invariance(inv, z, rng), side)
            if not _close(a, b, rtol=1e-5, atol=1e-7):
                break
        else:
            raise AssertionError(
                f"not declared invariant to {inv.value}, yet no tried {inv.value} transform "
                "changed the value: declare the invariance or check the implementation"
            )


def _check_triangle(m: Measure, rng: np.random.Generator) -> None:
    if not m.info.metric:
        raise _Skip("not declared a metric")
    for _ in range(10):
        x, y = example_pair(m, rng)
        z = example_pair(m, rng, dx=x.shape[1], dy=y.shape[1])[1 if m.info.same_dim else 0]
        if z.shape[1] != x.shape[1] and m.info.same_dim:  # pragma: no cover
            z = z[:, : x.shape[1]]
        dxy, dyz, dxz = _value(m, x, y), _value(m, y, z), _value(m, x, z)
        assert dxz <= dxy + dyz + 1e-9, f"triangle inequality fails: {dxz} > {dxy} + {dyz}"


def _check_backends(m: Measure, rng: np.random.Generator) -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a test dependency
        raise _Skip("torch not installed") from None
    x, y = example_pair(m, rng)
    a = _value(m, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        out = m.compute(torch.from_numpy(x), torch.from_numpy(y))
    if m.backend == "array_api":
        assert isinstance(out, torch.Tensor), (
            f"array-API measure returned {type(out).__name__} for torch input"
        )
    b = float(out)
    assert _close(a, b, rtol=1e-7, atol=1e-9), f"NumPy {a} vs torch {b}"


def _check_low_precision(m: Measure, rng: np.random.Generator) -> None:
    x, y = example_pair(m, rng)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    a = _value(m, x32.astype(np.float64), y32.astype(np.float64))
    b = _value(m, x32, y32)
    assert _close(a, b, rtol=1e-6, atol=1e-8), f"float32 input gave {b}, float64 answer {a}"
    x16, y16 = x.astype(np.float16), y.astype(np.float16)
    c = _value(m, x16.astype(np.float64), y16.astype(np.float64))
    d = _value(m, x16, y16)
    assert _close(c, d, rtol=1e-6, atol=1e-8), f"float16 input gave {d}, float64 answer {c}"


#: exact powers of two ``(kx, ky)`` applied to ``(X, Y)`` by the magnitude check
POW2_SCALES = ((-500, -500), (500, 500), (-200, 300), (300, -200), (60, 60), (-60, -60))
#: powers of ten ``(ex, ey)`` (inexact scalings: rounding, and ties may flip)
POW10_SCALES = ((-300, -300), (-100, -100), (-15, -15), (80, 80), (200, 200), (300, -250))

_MAGNITUDE_TOL = 1e-9


def _scaled_value(m: Measure, x: np.ndarray, y: np.ndarray, strict: bool = False
                  ) -> float | None:
    """``m(x, y)``, finite and in range; None when it raises a repscope error (allowed at
    extreme scales unless ``strict``)."""
    try:
        v = _value(m, x, y)
    except RepscopeError:
        if strict:
            raise
        return None
    lo, hi = m.info.value_range
    assert math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9, (
        f"value {v} at max |X| = {np.max(np.abs(x)):.3g}, max |Y| = {np.max(np.abs(y)):.3g} "
        f"is not finite or outside [{lo}, {hi}]"
    )
    return v


def _check_magnitudes(m: Measure, rng: np.random.Generator) -> None:
    x, y = example_pair(m, rng)
    if Invariance.ISOTROPIC_SCALING in m.invariances:
        base = _value(m, x, y)
        tol = _MAGNITUDE_TOL * max(1.0, abs(base))
        for kx, ky in POW2_SCALES:
            v = _scaled_value(m, np.ldexp(x, kx), np.ldexp(y, ky))
            assert v is None or abs(v - base) <= tol, (
                f"declared invariant to isotropic scaling, but X·2^{kx}, Y·2^{ky} gives {v} "
                f"instead of {base}"
            )
        flip = max(tol, m.tie_resolution(x.shape[0]) * (1 + 1e-9))
        for ex, ey in POW10_SCALES:
            v = _scaled_value(m, x * 10.0**ex, y * 10.0**ey)
            assert v is None or abs(v - base) <= flip, (
                f"declared invariant to isotropic scaling, but X·1e{ex}, Y·1e{ey} gives {v} "
                f"instead of {base} (allowed: {flip:.3g})"
            )
        return
    _check_magnitude_range(m, x, y)


def _check_magnitude_range(m: Measure, x: np.ndarray, y: np.ndarray) -> None:
    """Not scale invariant: refused outside ``magnitude_range``, homogeneity kept inside."""
    lo, hi = m.info.magnitude_range
    mx, my = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    big, small = max(mx, my), min(mx, my)
    if math.isfinite(hi) and hi * 4 / big < 2.0**1000:
        k = math.ceil(math.log2(hi / big)) + 2
        _expect(InputValueError, lambda: m(np.ldexp(x, k), np.ldexp(y, k)),
                f"inputs scaled to 4x the top of magnitude_range {m.info.magnitude_range}")
    if lo / small > 2.0**-1000:
        k = math.floor(math.log2(lo / small)) - 2
        _expect(InputValueError, lambda: m(np.ldexp(x, k), np.ldexp(y, k)),
                f"inputs scaled to 1/4 of the bottom of magnitude_range {m.info.magnitude_range}")
    v1 = _value(m, x, y)
    edges = [math.floor(math.log2(hi / big)) if math.isfinite(hi) else 200,
             math.ceil(math.log2(lo / small)) if lo > 0 else -200]
    power = _homogeneity(m, x, y, v1)
    for k in edges:
        k = max(-1000, min(1000, k))
        try:
            v = _scaled_value(m, np.ldexp(x, k), np.ldexp(y, k), strict=True)
        except RepscopeError as e:
            raise AssertionError(
                f"inputs scaled by 2^{k}, inside magnitude_range {m.info.magnitude_range}, "
                f"raised {type(e).__name__}: {e}"
            ) from e
        if power is None:
            continue
        want = math.ldexp(v1, k * power)
        assert abs(v - want) <= _MAGNITUDE_TOL * abs(want), (
            f"m(2X, 2Y) = 2^{power}·m(X, Y), but at X, Y·2^{k} (inside magnitude_range) the "
            f"value is {v} instead of {want}: overflow or underflow"
        )


def _homogeneity(m: Measure, x: np.ndarray, y: np.ndarray, v1: float) -> int | None:
    """``p`` with ``m(2ʲX, 2ʲY) = 2^{jp} m(X, Y)`` for j = 1, 2 (up to rounding), or None."""
    if v1 == 0.0:
        return None
    v2, v4 = _value(m, 2.0 * x, 2.0 * y), _value(m, 4.0 * x, 4.0 * y)
    if not v2 / v1 > 0:
        return None
    p = round(math.log2(v2 / v1))
    ok = all(abs(v - math.ldexp(v1, j * p)) <= 1e-12 * abs(v) for j, v in ((1, v2), (2, v4)))
    return p if ok else None


def _expect(exc: type[RepscopeError], fn: Callable[[], Any], what: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegeneracyWarning)
            fn()
    except exc:
        return
    except Exception as e:  # noqa: BLE001
        raise AssertionError(
            f"{what}: raised {type(e).__name__}: {e}, expected {exc.__name__}"
        ) from e
    raise AssertionError(f"{what}: no error raised, expected {exc.__name__}")


def _check_bad_inputs(m: Measure, rng: np.random.Generator) -> None:
    x, y = example_pair(m, rng)
    nan = x.copy()
    nan[1, 0] = np.nan
    inf = x.copy()
    inf[0, 0] = np.inf
    _expect(InputShapeError, lambda: m(x, y[:-1]), "different numbers of samples")
    _expect(InputValueError, lambda: m(nan, y), "NaN input")
    _expect(InputValueError, lambda: m(x, inf), "Inf input")
    _expect(InputValueError, lambda: m(x.astype(complex), y), "complex input")
    _expect(InputValueError, lambda: m(x.astype(str), y), "string input")
    _expect(InputShapeError, lambda: m(np.zeros((0, x.shape[1])), y[:0]), "empty input")
    _expect(InputShapeError, lambda: m(x[:, 0], y), "1-D input")
    _expect(InputShapeError, lambda: m(x[:, :, None], y), "3-D input")
    if m.min_samples > 1:
        k = m.min_samples - 1
        _expect(InsufficientSamplesError, lambda: m(x[:k], y[:k]), f"{k} samples")
    if m.requires_variance:
        const = np.ones_like(x) * 3.0
        _expect(DegenerateInputError, lambda: m(const, y), "constant representation")


def _check_determinism(m: Measure, rng: np.random.Generator) -> None:
    x, y = example_pair(m, rng)
    a, b = _value(m, x, y), _value(m, x, y)
    assert a == b, f"two identical calls gave {a} and {b}"


ALL_CHECKS: dict[str, Callable[[Measure, np.random.Generator], None]] = {
    "identity": _check_identity,
    "symmetry": _check_symmetry,
    "range": _check_range,
    "invariances": _check_invariances,
    "non_invariances": _check_non_invariances,
    "triangle": _check_triangle,
    "backends": _check_backends,
    "low_precision": _check_low_precision,
    "magnitudes": _check_magnitudes,
    "bad_inputs": _check_bad_inputs,
    "determinism": _check_determinism,
}


def check_measure(
    m: Measure | str,
    params: dict[str, Any] | None = None,
    *,
    checks: Iterable[str] | None = None,
    seed: int = 0,
    raise_on_failure: bool = True,
) -> CheckReport:
    """Run the conformance checks on a measure instance (or registered name).

    Parameters
    ----------
    m : Measure or str
        A configured measure, or a registered name (configured with ``params``).
    params : dict, optional
        Parameters when ``m`` is a name.  Parameters required by the measure
        (e.g. labels) are filled in from :meth:`Measure.example_params`.
    checks : iterable of str, optional
        Subset of :data:`ALL_CHECKS` to run (default: all).
    seed : int
        Seed of the random inputs and transforms.
    raise_on_failure : bool
        Raise ``AssertionError`` listing every failed check (default) instead of
        only returning the report.
    """
    if isinstance(m, str):
        cls = type(_lookup(m, **(params or {})))
        extra = cls.example_params(48, np.random.default_rng(seed))
        m = _lookup(m, **{**extra, **(params or {})})
    report = CheckReport(m.info.name, dict(m.params))
    names = list(ALL_CHECKS) if checks is None else list(checks)
    for name in names:
        rng = np.random.default_rng([seed, sum(map(ord, name))])
        try:
            ALL_CHECKS[name](m, rng)
            report.results[name] = "ok"
        except _Skip as s:
            report.results[name] = f"skipped: {s}"
        except AssertionError as e:
            report.results[name] = f"FAILED: {e}"
    if raise_on_failure and not report.ok:
        raise AssertionError(str(report))
    return report
