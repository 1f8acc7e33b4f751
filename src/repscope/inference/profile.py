"""The invariance profile: in what sense are two representations alike?

:func:`profile` scores a pair under one measure per invariance class and
states, in numbers and one plain sentence, the strongest sense in which the
two agree::

    p = repscope.profile(X, Y)
    p.sentence
    # 'Equal up to an invertible linear map (held-out mean CCA 0.97), but not up
    #  to rotation (Procrustes similarity 0.61); neighbourhoods differ (mutual kNN 0.34).'

The classes form a chain from strict to loose — a permutation of units ⊂ a
rotation (orthogonal map, with isotropic scaling) ⊂ an invertible linear map
(all measures centre the data, so translations are always allowed) — plus two
separate aspects: neighbourhood structure and, when model outputs are given,
function.  Every score is put on a similarity scale with 1 = equal up to that
class; a class *agrees* when its score reaches the class threshold
(:class:`Thresholds`), and, when statistics are on, its permutation p-value
is at most ``alpha`` and the threshold applies to the null-calibrated score.
Rules and thresholds are documented in ``docs/profile.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from repscope.core.arrays import to_float, to_numpy
from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.core.validation import check_pair
from repscope.core.warning_capture import capture_warnings
from repscope.inference.heldout import heldout_splits
from repscope.inference.multiple_testing import format_pvalue
from repscope.inference.permutation import null_calibration, permutation_null
from repscope.inference.resampling import as_rng, permute_prepared
from repscope.measures.base import Measure, Prepared
from repscope.measures.registry import list_measures
from repscope.measures.registry import measure as _lookup

__all__ = ["Thresholds", "ClassScore", "InvarianceProfile", "profile", "CLASS_ORDER"]

#: classes in report order: the chain (strict → loose), then the separate aspects
CLASS_ORDER: tuple[str, ...] = ("permutation", "orthogonal", "linear", "neighbourhood", "function")
CHAIN: tuple[str, ...] = ("permutation", "orthogonal", "linear")

PHRASES: dict[str, str] = {
    "permutation": "a permutation of units",
    "orthogonal": "rotation",
    "linear": "an invertible linear map",
    "neighbourhood": "neighbourhood structure",
    "function": "outputs",
}


@dataclass(frozen=True)
class Thresholds:
    """Scores (similarity scale, 1 = equal up to the class) at which a class agrees.

    With statistics on, the thresholds apply to the null-calibrated score
    (0 = chance, 1 = equal) and a class must also have permutation p-value
    ``<= alpha``.
    """

    permutation: float = 0.9
    orthogonal: float = 0.9
    linear: float = 0.9
    neighbourhood: float = 0.5
    function: float = 0.9
    alpha: float = 0.05

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise InvalidParameterError(f"threshold {f.name} must be in (0, 1], got {v!r}")

    @classmethod
    def parse(cls, spec: Thresholds | Mapping[str, float] | None) -> Thresholds:
        if spec is None:
            return cls()
        if isinstance(spec, Thresholds):
            return spec
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise InvalidParameterError(
                f"unknown threshold(s) {unknown}; allowed {sorted(allowed)}"
            )
        return cls(**dict(spec))


@dataclass(frozen=True)
class ClassScore:
    """The score of one invariance class.

    Attributes
    ----------
    name : class name (:data:`CLASS_ORDER`).
    phrase : how the sentence names it ("rotation", ...).
    measure : registry name of the measure used (``None`` if not assessed).
    label : how the sentence names the score ("Procrustes similarity", ...).
    score : similarity-scale score, 1 = equal up to this class.
    raw : the measure's own value (e.g. the Procrustes distance).
    calibrated, zscore, pvalue : permutation statistics of ``score`` (stats on).
    p_floor : the smallest p-value the permutations can give, ``1/(m + 1)``.
    threshold : the threshold the verdict used.
    agree : verdict; ``None`` when the class could not be assessed.
    note : why it was not assessed, or how the score was obtained.
    others : further scores of the class for context (e.g. linear CKA).
    warnings : warnings raised while computing.
    """

    name: str
    phrase: str
    measure: str | None
    label: str
    score: float | None
    raw: float | None
    calibrated: float | None
    zscore: float | None
    pvalue: float | None
    threshold: float
    agree: bool | None
    note: str | None = None
    others: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    p_floor: float | None = None


@dataclass(frozen=True)
class InvarianceProfile:
    """Per-class scores and the one-sentence verdict of :func:`profile`.

    Attributes
    ----------
    classes : ``{name: ClassScore}`` in :data:`CLASS_ORDER`.
    strongest : the strictest chain class that agrees (``"permutation"``,
        ``"orthogonal"``, ``"linear"``) or ``None``.
    sentence : the verdict in one plain sentence.
    n, dx, dy : sizes of the pair.
    stats : whether permutation statistics were used.
    thresholds : the thresholds applied.
    """

    classes: dict[str, ClassScore]
    strongest: str | None
    sentence: str
    n: int
    dx: int
    dy: int
    stats: bool
    thresholds: Thresholds

    def __getitem__(self, name: str) -> ClassScore:
        return self.classes[name]

    def agrees(self, name: str) -> bool | None:
        """The verdict of class ``name`` (``None`` if not assessed)."""
        return self.classes[name].agree

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per class (for tables and the results report)."""
        out = []
        for c in self.classes.values():
            d = asdict(c)
            d["warnings"] = list(c.warnings)
            out.append(d)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "strongest": self.strongest,
            "sentence": self.sentence,
            "n": self.n,
            "dx": self.dx,
            "dy": self.dy,
            "stats": self.stats,
            "thresholds": asdict(self.thresholds),
            "classes": self.to_records(),
        }

    def __str__(self) -> str:
        lines = [f"Invariance profile (n={self.n}, dx={self.dx}, dy={self.dy})"]
        for c in self.classes.values():
            verdict = {True: "agree", False: "differ", None: "n/a"}[c.agree]
            score = "" if c.score is None else f"{c.score:.3f}"
            extra = []
            if c.calibrated is not None:
                extra.append(f"calibrated {c.calibrated:.3f}")
            if c.pvalue is not None:
                p = format_pvalue(c.pvalue, c.p_floor)
                extra.append(f"p {p}" if p.startswith("≤") else f"p={p}")
            extra += [f"{k} {v:.3f}" for k, v in c.others.items()]
            if c.note and (c.agree is None or c.note.startswith("implied")):
                extra.append(c.note)
            lines.append(
                f"  {c.name:<13} {verdict:<6} {c.label:<32} {score:>6}  {'; '.join(extra)}".rstrip()
            )
        lines.append(self.sentence)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"InvarianceProfile(strongest={self.strongest!r}, sentence={self.sentence!r})"


# ------------------------------------------------------------- class scorers
def _fidelity_from_distance(d: float) -> float:
    """Procrustes-type distance ``sqrt(2 − 2 f)`` on unit-norm data → fidelity ``f``."""
    return 1.0 - d * d / 2.0


@dataclass(frozen=True)
class _Candidate:
    measure: str
    label: str
    to_score: Callable[[float], float]
    params: dict[str, Any] = field(default_factory=dict)
    heldout: bool = False


def _candidates(name: str, heldout: bool, k: int) -> list[_Candidate]:
    same = lambda v: v  # noqa: E731
    if name == "permutation":
        return [
            _Candidate("permutation_procrustes", "permutation Procrustes similarity",
                       _fidelity_from_distance),
            _Candidate("hard_correlation_match", "matched-unit correlation", same),
        ]
    if name == "orthogonal":
        return [
            _Candidate("nbs", "Procrustes similarity", same),
            _Candidate("procrustes", "Procrustes similarity", _fidelity_from_distance),
        ]
    if name == "linear":
        label = "held-out mean CCA" if heldout else "mean CCA"
        return [_Candidate("mean_cca", label, same, heldout=heldout)]
    if name == "neighbourhood":
        return [_Candidate("mutual_knn", "mutual kNN", same, params={"k": k})]
    if name == "function":
        return [_Candidate("disagreement", "prediction agreement", lambda d: 1.0 - d)]
    raise InvalidParameterError(f"unknown class {name!r}")  # pragma: no cover


def _registered() -> set[str]:
    return {i.name for i in list_measures()}


class _Scorer:
    """Scores one candidate on prepared data, with an optional permutation null."""

    def __init__(self, cand: _Candidate, m: Measure, px: Prepared, py: Prepared,
                 test_fraction: float, n_splits: int, seed: int) -> None:
        self.cand, self.m, self.px, self.py = cand, m, px, py
        self.test_fraction, self.n_splits, self.seed = test_fraction, n_splits, seed

    def raw(self, py: Prepared | None = None) -> float:
        py = self.py if py is None else py
        if self.cand.heldout:
            values, _, _, _ = heldout_splits(self.m, self.px.data, py.data, self.test_fraction,
                                             seed=self.seed, n_splits=self.n_splits)
            return float(np.mean(values))
        return to_float(self.m.compare_prepared(self.px, py))

    def null(self, n_permutations: int) -> np.ndarray:
        if not self.cand.heldout:
            values, _ = permutation_null(self.m, self.px, self.py, n_permutations, self.seed)
            return values
        rng = as_rng(self.seed)
        out = np.empty(n_permutations)
        for i in range(n_permutations):
            out[i] = self.raw(permute_prepared(self.m, self.py, rng.permutation(self.px.n)))
        return out


def _assess(
    name: str,
    X: Any,
    Y: Any,
    *,
    heldout: bool,
    k: int,
    n_permutations: int,
    thresholds: Thresholds,
    test_fraction: float,
    n_splits: int,
    seed: int,
) -> ClassScore:
    threshold = float(getattr(thresholds, name))
    registered = _registered()
    cands = [c for c in _candidates(name, heldout, k) if c.measure in registered]
    base = dict(name=name, phrase=PHRASES[name], threshold=threshold, calibrated=None,
                zscore=None, pvalue=None)
    if not cands:
        wanted = ", ".join(c.measure for c in _candidates(name, heldout, k))
        return ClassScore(**base, measure=None, label="", score=None, raw=None, agree=None,
                          note=f"no measure registered for this class (wanted {wanted})")
    cand = cands[0]
    m = _lookup(cand.measure, **cand.params)
    if name == "permutation" and X.shape[1] != Y.shape[1]:
        return ClassScore(
            **base, measure=cand.measure, label=cand.label, score=None, raw=None, agree=None,
            note=f"widths differ ({X.shape[1]} vs {Y.shape[1]}): no permutation of units maps "
            "one onto the other",
        )
    try:
        with capture_warnings() as cw:
            px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
            scorer = _Scorer(cand, m, px, py, test_fraction, n_splits, seed)
            raw = scorer.raw()
            score = cand.to_score(raw)
            others: dict[str, float] = {}
            if name == "orthogonal" and "cka" in registered:
                others["linear CKA"] = _lookup("cka")(X, Y)
            if name == "linear" and heldout:
                others["in-sample mean CCA"] = to_float(m.compare_prepared(px, py))
            calibrated = zscore = pvalue = None
            if n_permutations:
                null = np.array([cand.to_score(v) for v in scorer.null(n_permutations)])
                cal = null_calibration(score, null, identity=1.0, kind="similarity")
                calibrated, zscore = cal.calibrated, cal.zscore
                pvalue = (int(np.sum(null >= score - 1e-12 * max(1.0, abs(score)))) + 1) / (
                    null.size + 1
                )
    except RepscopeError as exc:
        return ClassScore(**base, measure=cand.measure, label=cand.label, score=None, raw=None,
                          agree=None, note=f"{type(exc).__name__}: {exc}")
    if n_permutations:
        basis = calibrated
        agree = basis is not None and basis >= threshold and pvalue <= thresholds.alpha
        note = "verdict on the null-calibrated score and the permutation p-value"
    else:
        agree = score >= threshold
        note = "verdict on the raw score"
    base.update(calibrated=calibrated, zscore=zscore, pvalue=pvalue)
    return ClassScore(**base, measure=cand.measure, label=cand.label, score=score, raw=raw,
                      agree=bool(agree), note=note, others=others,
                      warnings=tuple(cw.messages),
                      p_floor=1 / (n_permutations + 1) if n_permutations else None)


# ------------------------------------------------------------------ sentence
def _num(c: ClassScore) -> str:
    parts = [f"{c.label} {c.score:.2f}"]
    if c.pvalue is not None:
        p = format_pvalue(c.pvalue, c.p_floor, digits=2)
        parts.append(f"p {p}" if p.startswith("≤") else f"p = {p}")
    return "(" + ", ".join(parts) + ")"


def _sentence(classes: Mapping[str, ClassScore]) -> tuple[str | None, str]:
    chain = [classes[n] for n in CHAIN if classes[n].agree is not None]
    strongest = next((c for c in chain if c.agree), None)
    if strongest is not None:
        main = f"equal up to {strongest.phrase} {_num(strongest)}"
        stricter = [c for c in chain if CHAIN.index(c.name) < CHAIN.index(strongest.name)]
        if stricter:
            c = stricter[-1]
            main += f", but not up to {c.phrase} {_num(c)}"
    elif chain:
        parts = [f"{c.phrase} {_num(c)}" for c in chain]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
        main = f"not equal up to {listed}"
    else:
        main = "no linear-algebraic class could be assessed"
    clauses = [main]
    nb = classes["neighbourhood"]
    if nb.agree is not None:
        clauses.append(f"neighbourhoods {'agree' if nb.agree else 'differ'} {_num(nb)}")
    fn = classes["function"]
    if fn.agree is not None:
        clauses.append(f"outputs {'agree' if fn.agree else 'differ'} {_num(fn)}")
    text = "; ".join(clauses)
    return (strongest.name if strongest else None), text[0].upper() + text[1:] + "."


# ------------------------------------------------------------------ public
def profile(
    X: Any,
    Y: Any,
    *,
    outputs: tuple[Any, Any] | None = None,
    stats: bool | int = False,
    heldout: bool = True,
    test_fraction: float = 0.5,
    n_splits: int = 3,
    k: int = 10,
    thresholds: Thresholds | Mapping[str, float] | None = None,
    seed: int = 0,
) -> InvarianceProfile:
    """Invariance profile of a pair: in which sense are ``X`` and ``Y`` alike?

    Parameters
    ----------
    X, Y : (n, dx), (n, dy) representations of the same inputs.
    outputs : optional ``(outputs_X, outputs_Y)``, (n, C) logits of the two
        models on the same inputs, for the function class (``disagreement``).
    stats : ``False`` (raw scores), ``True`` (200 permutations) or the number
        of permutations; the verdicts then use the null-calibrated scores and
        p-values.
    heldout : score the linear class with the held-out mean CCA (canonical
        directions fitted on a ``1 − test_fraction`` share of the samples,
        correlations on the rest, averaged over ``n_splits`` random splits),
        so ``d`` close to ``n`` does not inflate it.  ``False`` uses the
        in-sample mean CCA.
    k : neighbours for ``mutual_knn``.
    thresholds : :class:`Thresholds` or a mapping overriding some of them.
    seed : seed of the splits and permutations.

    Classes and measures
    --------------------
    ========================  =================================  ===================
    class                     measure (score, 1 = equal)          needs
    ========================  =================================  ===================
    permutation of units      permutation_procrustes (1 − d²/2)  equal widths
    rotation (+ scale)        nbs (= 1 − procrustes²/2)
    invertible linear map     mean_cca (held-out by default)
    neighbourhood structure   mutual_knn
    function (outputs)        1 − disagreement                   ``outputs``
    ========================  =================================  ===================

    ``strongest`` is the strictest class of the chain permutation ⊂ rotation
    ⊂ invertible linear map that agrees; the sentence names it and the next
    stricter class that does not (or, when none agrees, lists every assessed
    chain class with its score), then the neighbourhood and output clauses.
    Looser chain classes whose own score fails are kept as measured and get a
    note saying they are implied by the strongest class.
    """
    X, Y = check_pair(X, Y, min_samples=4)
    X, Y = to_numpy(X), to_numpy(Y)
    th = Thresholds.parse(thresholds)
    if stats is True:
        n_perm = 200
    elif stats is False or stats is None:
        n_perm = 0
    elif isinstance(stats, int) and stats >= 2:
        n_perm = int(stats)
    else:
        raise InvalidParameterError(f"stats must be True, False or an int >= 2, got {stats!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be a positive int, got {k!r}")
    common = dict(heldout=heldout, k=k, n_permutations=n_perm, thresholds=th,
                  test_fraction=test_fraction, n_splits=n_splits, seed=seed)
    classes: dict[str, ClassScore] = {}
    for name in CLASS_ORDER:
        if name == "function":
            if outputs is None:
                classes[name] = ClassScore(
                    name=name, phrase=PHRASES[name], measure=None, label="prediction agreement",
                    score=None, raw=None, calibrated=None, zscore=None, pvalue=None,
                    threshold=th.function, agree=None, note="no model outputs given",
                )
                continue
            if not (isinstance(outputs, tuple) and len(outputs) == 2):
                raise InvalidParameterError("outputs must be a pair (outputs_X, outputs_Y)")
            ox, oy = check_pair(outputs[0], outputs[1], min_samples=1)
            if ox.shape[0] != X.shape[0]:
                raise InvalidParameterError(
                    f"outputs have {ox.shape[0]} rows but the representations have {X.shape[0]}"
                )
            classes[name] = _assess(name, to_numpy(ox), to_numpy(oy), **common)
        else:
            classes[name] = _assess(name, X, Y, **common)
    strongest, sentence = _sentence(classes)
    if strongest is not None:  # looser chain classes are implied; explain a low own score
        for name in CHAIN[CHAIN.index(strongest) + 1:]:
            c = classes[name]
            if c.agree is False:
                classes[name] = replace(c, note=(
                    f"implied by agreement up to {PHRASES[strongest]}; the {c.label} is low "
                    "because it weighs every direction equally, including low-variance ones "
                    "where the two differ (e.g. noise)"
                ))
    return InvarianceProfile(
        classes=classes, strongest=strongest, sentence=sentence, n=int(X.shape[0]),
        dx=int(X.shape[1]), dy=int(Y.shape[1]), stats=bool(n_perm), thresholds=th,
    )
