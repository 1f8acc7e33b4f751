"""Measure metadata: what a measure is, what it is invariant to, what it assumes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from repscope.core.validation import FLOAT32_NORMAL_RANGE


class Invariance(str, Enum):
    """Transformations ``T`` with ``m(X, T(Y)) == m(X, Y)`` (applied to one side).

    The classes are nested: permutation ⊂ orthogonal ⊂ invertible linear ⊂
    affine, and translation ⊂ affine.
    """

    PERMUTATION = "permutation"
    ORTHOGONAL = "orthogonal"
    ISOTROPIC_SCALING = "isotropic_scaling"
    TRANSLATION = "translation"
    INVERTIBLE_LINEAR = "invertible_linear"
    AFFINE = "affine"


#: Short column names for tables (CLI, README).
SHORT_NAMES: dict[Invariance, str] = {
    Invariance.PERMUTATION: "perm",
    Invariance.ORTHOGONAL: "orth",
    Invariance.ISOTROPIC_SCALING: "scale",
    Invariance.TRANSLATION: "shift",
    Invariance.INVERTIBLE_LINEAR: "lin",
    Invariance.AFFINE: "affine",
}

#: Invariances implied by a declared one (a measure must declare them too).
IMPLIED: dict[Invariance, frozenset[Invariance]] = {
    Invariance.ORTHOGONAL: frozenset({Invariance.PERMUTATION}),
    Invariance.INVERTIBLE_LINEAR: frozenset(
        {Invariance.ORTHOGONAL, Invariance.PERMUTATION, Invariance.ISOTROPIC_SCALING}
    ),
    Invariance.AFFINE: frozenset(
        {
            Invariance.INVERTIBLE_LINEAR,
            Invariance.ORTHOGONAL,
            Invariance.PERMUTATION,
            Invariance.ISOTROPIC_SCALING,
            Invariance.TRANSLATION,
        }
    ),
}

FAMILIES = (
    "cca",
    "alignment",
    "kernel",
    "rsm",
    "neighbourhood",
    "information",
    "statistic",
    "functional",
    "identifiability",
    "custom",
)


@dataclass(frozen=True)
class SampleRule:
    """A minimum number of samples and why fewer are refused.

    The built-in measures take their ``min_samples`` and ``min_samples_reason``
    from the rules below, one per kind of measure, so measures of one kind agree
    (``MeasureInfo(..., **GEOMETRY.fields())``).
    """

    n: int
    reason: str

    def fields(self) -> dict[str, Any]:
        """``{"min_samples": n, "min_samples_reason": reason}`` for :class:`MeasureInfo`."""
        return {"min_samples": self.n, "min_samples_reason": self.reason}


#: measures comparing the geometry of two representations (alignment, CCA, kernels,
#: RSMs, correlations of units)
GEOMETRY = SampleRule(
    3, "two samples form a single segment (one direction once centred), which any other "
    "two samples match after a rotation and a scaling, so unrelated representations would "
    "look identical (Procrustes 0, CKA and NBS 1); three samples are the fewest whose "
    "geometries can differ")
#: unbiased (U-statistic) estimators
UNBIASED = SampleRule(
    4, "the unbiased (U-statistic) estimator divides by n − 3")
#: measures built on nearest neighbours
NEIGHBOURS = SampleRule(
    3, "a sample's neighbourhood can differ between two representations only if it has "
    "at least two other samples to choose from (and k nearest neighbours need n >= k + 1)")
#: held-out (cross-validated) fits
CROSS_VALIDATED = SampleRule(
    4, "every training set must keep the three samples of a geometry and every fold hold out "
    "at least one (with `folds` folds: the smallest n >= folds whose training sets keep three)")
#: averages over inputs or samples (functional rates, per-representation statistics)
MEAN = SampleRule(1, "an average over the inputs, defined from one input on")
#: chance-corrected agreement (Cohen's κ)
CHANCE_CORRECTED = SampleRule(
    2, "at one input the agreement expected by chance is 1, and the chance-corrected κ is 0/0")
#: averages over pairs of samples
PAIRS = SampleRule(2, "an average over pairs of samples needs two")

#: every rule of the built-in measures
SAMPLE_RULES: tuple[SampleRule, ...] = (
    GEOMETRY, UNBIASED, NEIGHBOURS, CROSS_VALIDATED, MEAN, CHANCE_CORRECTED, PAIRS,
)


@dataclass(frozen=True)
class MeasureInfo:
    """Everything repscope and its users need to know about a measure.

    Attributes
    ----------
    name : canonical registry name.
    family : one of :data:`FAMILIES`.
    kind : ``"similarity"`` (larger = more alike) or ``"distance"`` (0 = identical).
    value_range : closed interval of possible values (``math.inf`` allowed).
    symmetric : ``m(X, Y) == m(Y, X)``.
    metric : satisfies the triangle inequality (and symmetry, identity).
    invariances : transformations of one argument that leave the value unchanged.
    assumptions : plain-language assumptions and caveats.
    reference : citation for the definition.
    backend : ``"array_api"`` (runs natively on NumPy and torch, incl. CUDA) or
        ``"numpy"`` (converts torch input to NumPy explicitly).
    differentiable : gradients flow through torch inputs.
    min_samples : smallest number of samples accepted (a parameter may raise it, see
        :attr:`Measure.min_samples`).
    min_samples_reason : why fewer samples are refused (the built-in measures take both
        from one of :data:`SAMPLE_RULES`, so measures of one kind agree).
    magnitude_range : ``(lo, hi)``, the largest input magnitudes accepted by instances
        that are *not* invariant to isotropic scaling (outside it they raise
        :class:`~repscope.InputValueError`); default: the normal range of float32.
        Scale-invariant instances accept any finite input (they normalise it).
    same_dim : X and Y must have equal widths.
    input_kind : ``"representation"``, ``"logits"`` or ``"labels"``-like outputs.
    params : parameter names with their defaults.
    identity_value : value of ``m(X, X)``; defaults to the top of the range for a
        similarity and 0 for a distance.
    stochastic : uses randomness (controlled by a ``seed`` parameter).
    variants : parameter settings the conformance suite checks (``({},)`` = defaults).
        Invariances may depend on parameters: see :attr:`Measure.invariances`.
    version : the version of the measure's *meaning* (an integer ≥ 1).  Bump it
        whenever the value a call returns changes for the same inputs and
        parameters — a changed default, a corrected formula, another estimator.
        It is part of every stored result's key and provenance
        (:class:`~repscope.storage.results_db.ResultKey`), so a grid recomputes
        rows of an older version instead of reusing them, and a report warns when
        one measure's rows carry different versions.  Refactors that keep every
        value unchanged do not bump it.
    """

    name: str
    family: str
    kind: str
    value_range: tuple[float, float]
    symmetric: bool
    metric: bool
    invariances: frozenset[Invariance]
    assumptions: str
    reference: str
    backend: str = "array_api"
    differentiable: bool = False
    min_samples: int = 3
    min_samples_reason: str = ""
    magnitude_range: tuple[float, float] = FLOAT32_NORMAL_RANGE
    same_dim: bool = False
    input_kind: str = "representation"
    params: dict[str, Any] = field(default_factory=dict)
    identity_value: float | None = None
    stochastic: bool = False
    variants: tuple[dict[str, Any], ...] = ({},)
    version: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) \
                or self.version < 1:
            raise ValueError(f"{self.name}: version must be an integer >= 1, got "
                             f"{self.version!r}")
        if self.kind not in ("similarity", "distance"):
            raise ValueError(f"{self.name}: kind must be 'similarity' or 'distance'")
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family {self.family!r} not in {FAMILIES}")
        if self.backend not in ("array_api", "numpy"):
            raise ValueError(f"{self.name}: backend must be 'array_api' or 'numpy'")
        lo, hi = self.value_range
        if not lo <= hi:
            raise ValueError(f"{self.name}: empty value range {self.value_range}")
        inv = frozenset(Invariance(i) for i in self.invariances)
        object.__setattr__(self, "invariances", inv)
        for declared in inv:
            missing = IMPLIED.get(declared, frozenset()) - inv
            if missing:
                names = ", ".join(sorted(m.value for m in missing))
                raise ValueError(
                    f"{self.name}: invariance to {declared.value} implies {names}; declare them"
                )
        if self.metric and not self.symmetric:
            raise ValueError(f"{self.name}: a metric must be symmetric")
        mlo, mhi = self.magnitude_range
        if not 0.0 < mlo <= mhi:
            raise ValueError(f"{self.name}: magnitude_range must satisfy 0 < lo <= hi, got "
                             f"{self.magnitude_range}")
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) \
                or self.min_samples < 1:
            raise ValueError(f"{self.name}: min_samples must be an integer >= 1")

    @property
    def identity(self) -> float:
        """Value of ``m(X, X)``."""
        if self.identity_value is not None:
            return self.identity_value
        return self.value_range[1] if self.kind == "similarity" else 0.0

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.value_range
        return {
            "name": self.name,
            "family": self.family,
            "kind": self.kind,
            "range": [_json_num(lo), _json_num(hi)],
            "symmetric": self.symmetric,
            "metric": self.metric,
            "invariances": sorted(i.value for i in self.invariances),
            "assumptions": self.assumptions,
            "reference": self.reference,
            "backend": self.backend,
            "differentiable": self.differentiable,
            "min_samples": self.min_samples,
            "min_samples_reason": self.min_samples_reason,
            "magnitude_range": [_json_num(self.magnitude_range[0]),
                                _json_num(self.magnitude_range[1])],
            "same_dim": self.same_dim,
            "input_kind": self.input_kind,
            "params": {k: _json_param(v) for k, v in self.params.items()},
            "version": self.version,
        }


def _json_num(x: float) -> float | str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _json_param(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)
