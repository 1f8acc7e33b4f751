"""What to compute beside each value: the :class:`Stats` options, and measure specifications.

A measure can be named (``"cka"``), given as a configured instance
(``repscope.measure("cka", kernel="rbf")``) or as ``(name, params)``;
:func:`resolve_measure` turns any of these into a :class:`~repscope.Measure`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from repscope.core.errors import (
    InvalidParameterError,
)
from repscope.inference.multiple_testing import (
    ADJUST_METHODS,
    check_q,
    permutations_for_family,
)
from repscope.measures.base import Measure
from repscope.measures.registry import measure as _lookup

#: a measure given by name, as a configured instance, or as ``(name, params)``
MeasureSpec = Any

ALTERNATIVES = ("more_similar", "less_similar", "two-sided")
#: interval methods (``docs/statistics.md`` has their measured coverage); the first is the
#: default everywhere: API, ``Stats``, study files and the CLI
CI_METHODS = ("jackknife", "percentile", "bca", "normal")
DEFAULT_CI_METHOD = CI_METHODS[0]

#: default numbers of resamples when statistics are requested by name only
DEFAULT_PERMUTATIONS = 200
DEFAULT_BOOTSTRAP = 200

#: budget of the automatic number of permutations (:meth:`Stats.for_family`)
DEFAULT_MAX_PERMUTATIONS = 10_000


# --------------------------------------------------------------- measures
def resolve_measure(spec: MeasureSpec) -> Measure:
    """Turn a measure specification into a configured :class:`Measure`.

    Accepted forms: a registered name (``"cka"``), a configured instance
    (``repscope.measure("cka", kernel="rbf")``), or a pair
    ``(name, {param: value})``.
    """
    if isinstance(spec, Measure):
        return spec
    if isinstance(spec, str):
        return _lookup(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        params = spec[1] or {}
        if not isinstance(params, Mapping):
            raise InvalidParameterError(
                f"measure parameters for {spec[0]!r} must be a mapping, got {type(params).__name__}"
            )
        return _lookup(spec[0], **dict(params))
    raise InvalidParameterError(
        "a measure must be a registered name, a repscope.Measure instance or a "
        f"(name, params) pair; got {spec!r}"
    )


# --------------------------------------------------------------- options
@dataclass(frozen=True)
class Stats:
    """Which statistics to compute alongside each value.

    Parameters
    ----------
    n_permutations : int
        Permutations for the permutation test and the null calibration (0 = off).
    n_boot : int
        Confidence interval on (> 0) or off (0); the number of bootstrap resamples
        for the bootstrap methods (the jackknife's evaluations are fixed).
    level : float
        Confidence level of the interval.
    ci_method : {"jackknife", "percentile", "bca", "normal"}
        Interval method (default ``"jackknife"``: bias-corrected estimate, see
        :func:`repscope.inference.bootstrap.bootstrap_ci`).
    heldout : bool
        Also compute the held-out value for measures that support it
        (:func:`supports_heldout`); ignored for the others.
    test_fraction : float
        Fraction of samples held out (``heldout``).
    n_splits : int
        Random train/test splits averaged (``heldout``).
    alternative : {"more_similar", "less_similar", "two-sided"}
        Direction of the permutation test.
    auto_permutations : bool
        Raise ``n_permutations`` for a family of tests (a grid's figures, a
        :func:`~repscope.compare` table) so that the p-value floor ``1/(m + 1)``
        lies below ``q / F``, the smallest threshold of the adjustment
        (:meth:`for_family`); ``n_permutations`` is then the minimum.
    max_permutations : int
        Budget of the automatic rule; where it binds, cells that stay at the
        floor are reported ``underpowered``.
    adjust : {"bh", "holm", "none"}
        Multiple-comparison adjustment of the p-values of a family:
        Benjamini–Hochberg (false discovery rate, the default), Holm
        (family-wise error rate) or none.
    q : float
        Level of the adjustment (FDR for BH, FWER for Holm).
    """

    n_permutations: int = 0
    n_boot: int = 0
    level: float = 0.95
    ci_method: str = DEFAULT_CI_METHOD
    heldout: bool = False
    test_fraction: float = 0.5
    n_splits: int = 1
    alternative: str = "more_similar"
    auto_permutations: bool = True
    max_permutations: int = DEFAULT_MAX_PERMUTATIONS
    adjust: str = "bh"
    q: float = 0.05

    def __post_init__(self) -> None:
        for name in ("n_permutations", "n_boot", "n_splits", "max_permutations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InvalidParameterError(f"Stats.{name} must be an integer >= 0, got {v!r}")
        if self.n_splits < 1:
            raise InvalidParameterError(f"Stats.n_splits must be >= 1, got {self.n_splits}")
        check_level(self.level)
        check_fraction(self.test_fraction)
        if self.ci_method not in CI_METHODS:
            raise InvalidParameterError(
                f"Stats.ci_method must be one of {CI_METHODS}, got {self.ci_method!r}"
            )
        if self.alternative not in ALTERNATIVES:
            raise InvalidParameterError(
                f"Stats.alternative must be one of {ALTERNATIVES}, got {self.alternative!r}"
            )
        if self.adjust not in (*ADJUST_METHODS, "none"):
            raise InvalidParameterError(
                f"Stats.adjust must be one of {(*ADJUST_METHODS, 'none')}, got {self.adjust!r}"
            )
        if not isinstance(self.auto_permutations, bool):
            raise InvalidParameterError(
                f"Stats.auto_permutations must be a bool, got {self.auto_permutations!r}"
            )
        check_q(self.q)

    @classmethod
    def parse(cls, spec: Any) -> Stats:
        """Build from ``None``, a :class:`Stats`, a mapping, or names.

        Names: ``"permutation"`` (``n_permutations=200``), ``"bootstrap"``
        (``n_boot=200``), ``"heldout"``, ``"all"`` (all three); a string or an
        iterable of strings.
        """
        if spec is None or spec is False:
            return cls()
        if isinstance(spec, Stats):
            return spec
        if isinstance(spec, Mapping):
            allowed = {f.name for f in fields(cls)}
            unknown = sorted(set(spec) - allowed)
            if unknown:
                raise InvalidParameterError(
                    f"unknown statistics option(s) {unknown}; allowed: {sorted(allowed)}"
                )
            return cls(**dict(spec))
        if isinstance(spec, str):
            names = [spec]
        elif isinstance(spec, Iterable):
            names = list(spec)
        else:
            raise InvalidParameterError(
                f"cannot interpret stats={spec!r}; use None, a name such as 'permutation', a "
                "list of names, a mapping or repscope.inference.options.Stats(...)"
            )
        kw: dict[str, Any] = {}
        for name in names:
            if name in ("permutation", "all"):
                kw["n_permutations"] = DEFAULT_PERMUTATIONS
            if name in ("bootstrap", "all"):
                kw["n_boot"] = DEFAULT_BOOTSTRAP
            if name in ("heldout", "all"):
                kw["heldout"] = True
            if name not in ("permutation", "bootstrap", "heldout", "all"):
                raise InvalidParameterError(
                    f"unknown statistic {name!r}; use 'permutation', 'bootstrap', 'heldout' "
                    "or 'all', or pass repscope.inference.options.Stats(...)"
                )
        return cls(**kw)

    @property
    def any(self) -> bool:
        """Whether any statistic is switched on."""
        return bool(self.n_permutations or self.n_boot or self.heldout)

    def for_family(self, family_size: int) -> Stats:
        """These options with the number of permutations a family of ``F`` tests needs.

        With permutations on and ``auto_permutations``, ``n_permutations``
        becomes ``max(n_permutations, min(⌊F/q⌋, max_permutations))`` (two-sided:
        ``⌊2F/q⌋``): the smallest ``m`` whose floor ``1/(m + 1)`` lies strictly
        below ``q / F``, the smallest threshold BH or Holm can use, capped by the
        budget (:func:`repscope.inference.multiple_testing.permutations_for_family`).
        Otherwise unchanged.
        """
        if not self.n_permutations or not self.auto_permutations or family_size < 1:
            return self
        m = permutations_for_family(
            int(family_size), self.q, minimum=int(self.n_permutations),
            cap=int(self.max_permutations), alternative=self.alternative,
        )
        return replace(self, n_permutations=m)

    def as_key(self) -> dict[str, Any]:
        """The options that change results (canonical, for the results database)."""
        key: dict[str, Any] = {}
        if self.n_permutations:
            key.update(n_permutations=int(self.n_permutations), alternative=self.alternative)
        if self.n_boot:
            key.update(n_boot=int(self.n_boot), level=float(self.level), ci_method=self.ci_method)
        if self.heldout:
            key.update(
                heldout=True, test_fraction=float(self.test_fraction), n_splits=int(self.n_splits)
            )
        return key


def check_level(level: float) -> None:
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0 < level < 1:
        raise InvalidParameterError(f"level must be a number in (0, 1), got {level!r}")


def check_fraction(f: float) -> None:
    if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 < f < 1:
        raise InvalidParameterError(f"test_fraction must be a number in (0, 1), got {f!r}")


def check_count(name: str, v: Any, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise InvalidParameterError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)
