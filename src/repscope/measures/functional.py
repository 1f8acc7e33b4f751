"""Functional measures: compare what two models *output* on the same inputs.

Inputs are model outputs of shape (n, C): logits or scores for C classes
(``input_kind="logits"``).  The prediction for an input is the arg-max class
(ties go to the lowest class index, as :func:`numpy.argmax`).  The class
columns of X and Y must refer to the same classes in the same order, so the
invariances are those of the *outputs*: hard-prediction measures are
invariant to multiplying the logits by a positive constant (the arg-max does
not move) and to nothing else in the conformance families (permuting,
rotating or shifting class columns changes predictions).

Measures needing ground truth take ``labels`` (n,) integer class indices as
a parameter.

The hard-prediction measures (``disagreement``, ``cohen_kappa``,
``accuracy_difference``, ``error_consistency``) also accept the predictions
themselves: a 1-D vector of n integer class labels (non-negative integers, any
integer or integral float dtype, NumPy or torch) in place of either (n, C)
array; ``jensen_shannon`` compares soft outputs and needs (n, C).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from repscope.core.arrays import Array, is_torch, namespace, to_numpy
from repscope.core.errors import (
    DegenerateInputError,
    InputShapeError,
    InputValueError,
    InsufficientSamplesError,
    InvalidParameterError,
)
from repscope.core.validation import as_representation
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import CHANCE_CORRECTED, MEAN, Invariance, MeasureInfo
from repscope.measures.registry import register

__all__ = [
    "AccuracyDifference",
    "CohenKappa",
    "Disagreement",
    "ErrorConsistency",
    "JensenShannon",
    "cohen_kappa",
]

_LN2 = math.log(2.0)
_SCALE = frozenset({Invariance.ISOTROPIC_SCALING})
_HARD = (
    "X and Y are (n, C) logits/scores over the same C >= 2 classes in the same column order, "
    "or 1-D vectors of predicted class labels; predictions are arg-max classes (ties to the "
    "lowest index)."
)


class _OutputMeasure(Measure):
    """Shared validation and cached arg-max predictions of (n, C) model outputs.

    Hard-prediction measures (``accepts_labels``) also take a 1-D vector of
    predicted class labels for either argument (:meth:`prepare`).
    """

    pair_bytes: ClassVar[float] = 0.0  # O(n·d) memory: no n × n matrix

    requires_variance = False
    #: whether a 1-D vector of integer class labels may stand for (n, C) outputs
    accepts_labels: ClassVar[bool] = True

    def prepare(self, X: Any, name: str = "X") -> Prepared:
        """Validate (n, C) outputs, or a 1-D vector of predicted labels (hard measures)."""
        if getattr(X, "ndim", None) != 1 and not (
            isinstance(X, (list, tuple)) and X and np.ndim(X) == 1
        ):
            return super().prepare(X, name)
        if not self.accepts_labels:
            raise InputShapeError(
                f"{self.info.name} compares soft outputs: {name} must be (n, C) logits or "
                "probabilities, not a 1-D vector of labels"
            )
        x = as_representation(X, name, ndim=1)
        x = to_numpy(x)
        if not bool(np.all(x == np.round(x))):
            raise InputShapeError(
                f"{name} is 1-D but not a vector of integer class labels; pass (n, C) "
                "logits/scores, or the predicted class of each input"
            )
        if bool(np.any(x < 0)):
            raise InputValueError(f"{name}: class labels must be >= 0")
        n = int(x.shape[0])
        if n < self.min_samples:
            raise InsufficientSamplesError(
                f"{name} has {n} samples; {self.info.name} needs at least {self.min_samples}: "
                f"{self.min_samples_reason}"
            )
        labels = x.astype(np.int64)
        return Prepared(x[:, None], {"argmax": labels, "labels_1d": True})

    def _check_widths(self, px: Prepared, py: Prepared) -> None:
        if px.cache.get("labels_1d") or py.cache.get("labels_1d"):
            return  # predicted labels carry no class count
        super()._check_widths(px, py)

    def prepare_key(self) -> tuple[Any, ...]:
        # the prepared outputs do not depend on labels (which are not hashable); the
        # arg-max measures bring logits to unit scale, Jensen-Shannon keeps their units
        return ("outputs", self.params.get("inputs", "logits"), self.normalises)

    def _prepare(self, p: Prepared) -> None:
        if int(p.data.shape[1]) < 2:
            raise InputShapeError(
                f"{self.info.name} needs outputs for C >= 2 classes (n, C), got "
                f"{int(p.data.shape[1])} column; for a binary logit z pass [0, z] per row"
            )

    @staticmethod
    def predictions(p: Prepared) -> np.ndarray:
        """Arg-max class of every row (cached)."""
        pred = p.cache.get("argmax")
        if pred is None:
            pred = np.argmax(to_numpy(p.data), axis=1).astype(np.int64)
            p.cache["argmax"] = pred
        return pred


class _LabelledMeasure(_OutputMeasure):
    """Measures comparing each model's predictions with ground-truth ``labels``."""

    def _check_params(self) -> None:
        labels = self.params["labels"]
        if labels is None:
            return  # reported when the measure is computed
        arr = np.asarray(to_numpy(labels) if is_torch(labels) else labels)
        if arr.ndim != 1 or arr.size == 0:
            raise InvalidParameterError(
                f"{self.info.name}: labels must be a non-empty 1-D array of class indices, "
                f"got shape {arr.shape}"
            )
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise InvalidParameterError(
                    f"{self.info.name}: labels must be integer class indices"
                )
        elif arr.dtype.kind not in "iu":
            raise InvalidParameterError(
                f"{self.info.name}: labels must be integer class indices, got dtype {arr.dtype}"
            )
        if np.any(arr < 0):
            raise InvalidParameterError(f"{self.info.name}: labels must be >= 0")
        self.params["labels"] = arr.astype(np.int64)

    @classmethod
    def example_params(cls, n: int, rng: Any) -> dict[str, Any]:
        """Random labels over 3 classes (the conformance outputs have >= 3 columns)."""
        return {"labels": rng.integers(0, 3, size=n)}

    def _labels_for(self, p: Prepared, who: str) -> np.ndarray:
        labels = self.params["labels"]
        if labels is None:
            raise InvalidParameterError(
                f"{self.info.name} needs ground truth: pass labels=<(n,) class indices>, "
                f"e.g. repscope.measure({self.info.name!r}, labels=y)"
            )
        if labels.shape[0] != p.n:
            raise InputShapeError(
                f"{self.info.name}: {labels.shape[0]} labels for {p.n} samples in {who}"
            )
        c = int(p.data.shape[1])
        if not p.cache.get("labels_1d") and int(labels.max()) >= c:
            raise InputValueError(
                f"{self.info.name}: label {int(labels.max())} is not a class of {who}, "
                f"which has {c} output columns"
            )
        return labels

    def correct(self, p: Prepared, who: str) -> np.ndarray:
        """Boolean vector: is the model's prediction right on each input?"""
        return self.predictions(p) == self._labels_for(p, who)


def cohen_kappa(a: Any, b: Any) -> float:
    """Cohen's κ between two label vectors.

    ``κ = (p_o − p_e) / (1 − p_e)`` with observed agreement
    ``p_o = (1/n) Σ_i 1[a_i = b_i]`` and chance agreement
    ``p_e = Σ_c p_a(c) p_b(c)`` from the marginal label frequencies.
    Raises :class:`DegenerateInputError` when ``p_e = 1`` (both vectors
    constant and equal), where κ is undefined.
    """
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    if a.shape != b.shape:
        raise InputShapeError(f"label vectors differ in length: {a.size} and {b.size}")
    n = a.size
    _, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inv[:n], inv[n:]
    m = int(inv.max()) + 1
    pa = np.bincount(ia, minlength=m) / n
    pb = np.bincount(ib, minlength=m) / n
    p_o = float(np.mean(ia == ib))
    p_e = float(np.dot(pa, pb))
    if p_e >= 1.0:
        raise DegenerateInputError(
            "Cohen's kappa is undefined: both prediction vectors are the same constant "
            "(chance agreement is 1)"
        )
    return (p_o - p_e) / (1.0 - p_e)


@register
class Disagreement(_OutputMeasure):
    r"""Prediction disagreement: fraction of inputs whose arg-max predictions differ.

    ``m(X, Y) = (1/n) Σ_i 1[argmax_c X_ic ≠ argmax_c Y_ic]``.

    In [0, 1]; a pseudometric (normalised Hamming distance between the
    prediction vectors).  Invariant to positive rescaling of the logits only.

    References
    ----------
    Klabunde et al., ACM Computing Surveys 2025 (disagreement); Madani,
    Pennock & Flake, "Co-validation", NeurIPS 2004.
    """

    info = MeasureInfo(
        name="disagreement",
        family="functional",
        kind="distance",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=True,
        invariances=_SCALE,
        assumptions=_HARD + " A pseudometric on prediction vectors; ignores confidence.",
        reference="Klabunde et al., ACM Computing Surveys 2025; Madani et al., NeurIPS 2004",
        backend="numpy",
        **MEAN.fields(),
        same_dim=True,
        input_kind="logits",
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        return float(np.mean(self.predictions(px) != self.predictions(py)))


@register
class CohenKappa(_OutputMeasure):
    r"""Cohen's κ between the two models' predictions (chance-corrected agreement).

    ``κ = (p_o − p_e) / (1 − p_e)``, ``p_o`` the fraction of equal
    predictions and ``p_e = Σ_c p_X(c) p_Y(c)`` the agreement expected from
    the two models' predicted-class frequencies.  In [−1, 1]; 1 = identical
    predictions, 0 = chance-level agreement.  Invariant to positive rescaling
    of the logits.  Raises :class:`DegenerateInputError` when both models
    predict one and the same class everywhere.

    References
    ----------
    Cohen, "A coefficient of agreement for nominal scales", Educational and
    Psychological Measurement 20, 1960; Klabunde et al., ACM Computing
    Surveys 2025.
    """

    info = MeasureInfo(
        name="cohen_kappa",
        family="functional",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_SCALE,
        assumptions=_HARD,
        reference="Cohen 1960; Klabunde et al., ACM Computing Surveys 2025",
        backend="numpy",
        **CHANCE_CORRECTED.fields(),
        same_dim=True,
        input_kind="logits",
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        return cohen_kappa(self.predictions(px), self.predictions(py))


@register
class JensenShannon(_OutputMeasure):
    r"""Mean Jensen–Shannon divergence between the two models' output distributions.

    With ``p_i = softmax(x_i)``, ``q_i = softmax(y_i)`` and ``m_i = (p_i + q_i)/2``::

        JS(p, q) = ½ Σ_c p_c log₂(p_c / m_c) + ½ Σ_c q_c log₂(q_c / m_c)
        m(X, Y)  = (1/n) Σ_i JS(p_i, q_i)

    Base-2 logarithms, so each term and the mean lie in [0, 1].  Computed
    from log-softmax with ``log m = logaddexp(log p, log q) − log 2`` (no
    overflow; terms with p_c = 0 count 0).  Not a metric (its square root per input is).
    Symmetric; no invariance in the conformance families (scaling logits
    changes the softmax temperature; shifting a class column changes the
    distribution).  Array-API: runs on NumPy or torch and is differentiable.

    Parameters
    ----------
    inputs : {"logits", "probabilities"}, default "logits"
        ``"probabilities"``: rows are already distributions (non-negative,
        summing to 1 within 1e-3; they are renormalised).  Zero
        probabilities are allowed (0 · log 0 = 0).

    References
    ----------
    Lin, "Divergence measures based on the Shannon entropy", IEEE Trans.
    Inf. Theory 37(1), 1991; Klabunde et al., ACM Computing Surveys 2025.
    """

    info = MeasureInfo(
        name="jensen_shannon",
        family="functional",
        kind="distance",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=frozenset(),
        assumptions="X and Y are (n, C) logits (or probabilities with inputs='probabilities') "
        "over the same classes in the same order; compares soft outputs.",
        reference="Lin, IEEE Trans. Inf. Theory 1991; Klabunde et al., ACM Computing Surveys 2025",
        differentiable=True,
        **MEAN.fields(),
        same_dim=True,
        input_kind="logits",
        params={"inputs": "logits"},
    )

    accepts_labels = False

    def _check_params(self) -> None:
        self._param_in("inputs", ("logits", "probabilities"))

    def _prepare(self, p: Prepared) -> None:
        super()._prepare(p)
        self._cached_distribution(p)

    def _cached_distribution(self, p: Prepared) -> tuple[Array, Array]:
        # computed lazily too: a Prepared may come from another measure with the same key
        key = ("distribution", self.params["inputs"])
        if key not in p.cache:
            p.cache[key] = self._distribution(p.data)
        return p.cache[key]

    def _distribution(self, z: Array) -> tuple[Array, Array]:
        """``(prob, log_prob)`` per row; ``log_prob`` is a finite dummy (0) where prob = 0."""
        xp = namespace(z)
        if self.params["inputs"] == "logits":
            shifted = z - xp.max(z, axis=1, keepdims=True)
            logp = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
            return xp.exp(logp), logp
        if bool(xp.any(z < 0.0)):
            raise InputValueError(f"{self.info.name}: probabilities must be non-negative")
        sums = xp.sum(z, axis=1, keepdims=True)
        if bool(xp.any(xp.abs(sums - 1.0) > 1e-3)):
            raise InputValueError(
                f"{self.info.name}: probability rows must sum to 1 (within 1e-3); pass "
                "inputs='logits' for unnormalised scores"
            )
        prob = z / sums
        return prob, xp.log(xp.where(prob > 0.0, prob, 1.0))

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        (p, lp), (q, lq) = self._cached_distribution(px), self._cached_distribution(py)
        xp = namespace(p)
        if self.params["inputs"] == "logits":  # log-softmax is finite: no underflow in m
            lm = xp.logaddexp(lp, lq) - _LN2
        else:
            m = 0.5 * (p + q)
            lm = xp.log(xp.where(m > 0.0, m, 1.0))
        # p · (log p − log m), taken as 0 where p = 0
        tp = xp.where(p > 0.0, p * (lp - lm), 0.0)
        tq = xp.where(q > 0.0, q * (lq - lm), 0.0)
        js = 0.5 * xp.sum(tp + tq, axis=1) / _LN2
        return xp.clip(xp.mean(js), 0.0, 1.0)


@register
class AccuracyDifference(_LabelledMeasure):
    r"""Absolute difference of the two models' accuracies.

    ``m(X, Y) = |acc(X) − acc(Y)|``, ``acc(X) = (1/n) Σ_i 1[argmax_c X_ic = ℓ_i]``
    for ground-truth labels ℓ.  In [0, 1]; a pseudometric (two models can
    have equal accuracy with different errors).  Invariant to positive
    rescaling of the logits.  X and Y may have different numbers of output
    columns as long as every label is a valid column of both.

    Parameters
    ----------
    labels : (n,) int array, required
        Ground-truth class indices.

    References
    ----------
    Klabunde et al., ACM Computing Surveys 2025 (performance difference).
    """

    info = MeasureInfo(
        name="accuracy_difference",
        family="functional",
        kind="distance",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=True,
        invariances=_SCALE,
        assumptions="X and Y are (n, C) logits/scores or 1-D predicted labels; predictions are "
        "arg-max classes; labels (n,) are required. A pseudometric.",
        reference="Klabunde et al., ACM Computing Surveys 2025",
        backend="numpy",
        **MEAN.fields(),
        input_kind="logits",
        params={"labels": None},
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        acc_x = float(np.mean(self.correct(px, "X")))
        acc_y = float(np.mean(self.correct(py, "Y")))
        return abs(acc_x - acc_y)


@register
class ErrorConsistency(_LabelledMeasure):
    r"""Error consistency (Geirhos et al. 2020): Cohen's κ of the correct/incorrect vectors.

    With ``c^X_i = 1[model X is right on i]`` (likewise ``c^Y``), accuracies
    ``p_X``, ``p_Y``, observed consistency ``c_obs = (1/n) Σ_i 1[c^X_i = c^Y_i]``
    and the consistency expected from independent errors at those accuracies
    ``c_exp = p_X p_Y + (1 − p_X)(1 − p_Y)``::

        κ = (c_obs − c_exp) / (1 − c_exp).

    In [−1, 1]; 1 = the models err on exactly the same inputs, 0 = no more
    overlap than chance.  Invariant to positive rescaling of the logits.
    Raises :class:`DegenerateInputError` when ``c_exp = 1`` (both models
    always right, or both always wrong).

    Parameters
    ----------
    labels : (n,) int array, required
        Ground-truth class indices.

    References
    ----------
    Geirhos, Meding & Wichmann, "Beyond accuracy: quantifying trial-by-trial
    behaviour of CNNs and humans by measuring error consistency", NeurIPS 2020.
    """

    info = MeasureInfo(
        name="error_consistency",
        family="functional",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_SCALE,
        assumptions="X and Y are (n, C) logits/scores or 1-D predicted labels; predictions are "
        "arg-max classes; labels (n,) are required; undefined when both models are always right "
        "or always wrong.",
        reference="Geirhos, Meding & Wichmann, NeurIPS 2020",
        backend="numpy",
        **CHANCE_CORRECTED.fields(),
        input_kind="logits",
        params={"labels": None},
    )

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        cx, cy = self.correct(px, "X"), self.correct(py, "Y")
        p_x, p_y = float(np.mean(cx)), float(np.mean(cy))
        c_obs = float(np.mean(cx == cy))
        c_exp = p_x * p_y + (1.0 - p_x) * (1.0 - p_y)
        if c_exp >= 1.0:
            raise DegenerateInputError(
                f"{self.info.name} is undefined when both models are always right or both "
                "always wrong (expected consistency is 1)"
            )
        return (c_obs - c_exp) / (1.0 - c_exp)
