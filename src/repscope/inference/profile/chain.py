r"""The nested classes (permutation ⊂ orthogonal ⊂ linear): scores, null, margin, verdict.

For each class ``C`` and each direction (B from A, A from B) the score is the
held-out R² of the best map in ``C`` (:mod:`.fits`); the class score is the
smaller of the two directions.  Three references turn it into a verdict:

* the **null** — the same procedure with the rows of B permuted
  (``n_permutations`` times): the score of unrelated representations at this
  n, d_A, d_B;
* the **margin** — at most ``margin`` (default 5 %) of each representation's
  variance unexplained by a map of the class;
* the **ceiling** — the score's distribution *at* the margin, simulated at the
  observed shapes: the class's map fitted to the data, plus noise shaped like
  the fit's residuals (rows shuffled) and scaled to the margin's share of the
  variance, ``n_margin`` times per direction.

Verdicts (α = ``alpha``):

* ``equivalent`` — in both directions the score exceeds the ceiling's upper
  (1 − α) quantile: better than any pair whose unexplained variance is at the
  margin would score, except with probability α (an equivalence test) — and
  the ceiling is told from chance (its lower α quantile above the null's upper
  one): where a pair at the margin scores like unrelated data (d close to n/2
  or above), passing the equivalence test says nothing, and the class is
  ``undetermined``;
* ``partial`` — above the null (permutation p ≤ α) and, in at least one
  direction, below the ceiling's lower α quantile; ``position`` places it
  between chance (0) and the ceiling (1);
* ``unrelated`` — not above the null; ``detectable`` is the smallest shared
  variance (searched among 1 %–90 %) at which simulated pairs of these shapes
  pass the null's upper quantile with 80 % power;
* ``undetermined`` — above the null but neither clearly within nor clearly
  outside the margin, or not assessable (reason given).

Finally a class's verdict is never stronger than that of a class containing
it; where noise would make it so, the stricter class is lowered and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri

from repscope.inference.profile.fits import (
    CLASS_ESTIMATORS,
    Folds,
    HeldoutErrors,
    SourceFits,
    class_scores,
    duplicate_groups,
    fitted_map,
)

__all__ = ["CHAIN", "DECISION_RULES", "STRENGTH", "ClassEvidence", "assess_chain", "decide_chain",
           "describe_p", "record_null"]

CHAIN: tuple[str, ...] = ("permutation", "orthogonal", "linear")

#: bumped whenever a verdict rule or its null changes, so stored verdicts are recomputed
#: (2: no ``equivalent`` where the margin is not told from chance; 3: the permutation null
#: repeats the observed folds in both directions)
DECISION_RULES = 3

#: how strong each verdict is, for the nesting rule (undetermined-but-above-null sits between)
STRENGTH: dict[str, float] = {"unrelated": 1.0, "partial": 2.0, "ambiguous": 2.5,
                              "equivalent": 3.0}

_Z80 = 0.8416212335729143  # standard normal 80 % quantile
DIRECTIONS = ("B from A", "A from B")


@dataclass
class ClassEvidence:
    """Evidence and verdict of one class (filled by :func:`assess_chain` and the aspects)."""

    name: str
    verdict: str = "undetermined"
    reason: str = ""
    score: float | None = None
    ci: tuple[float, float] | None = None
    directions: dict[str, float] = field(default_factory=dict)
    null: dict[str, float] | None = None
    pvalue: float | None = None
    p_floor: float | None = None
    ceiling: float | None = None
    ceiling_band: tuple[float, float] | None = None
    position: float | None = None
    position_ci: tuple[float, float] | None = None
    detectable: float | None = None
    ambiguous: bool = False
    pvalue_raw: float | None = None
    sims: dict[str, np.ndarray | None] = field(default_factory=dict)
    simulate: Callable[[float], dict[str, np.ndarray | None]] | None = None


@dataclass
class ChainEvidence:
    """What the chain classes were computed from (also used by the direction spectrum)."""

    results: dict[str, ClassEvidence]
    errors: dict[str, HeldoutErrors]  # by direction: "B from A" (target B), "A from B"


def _margin_scores(fits: SourceFits, source: np.ndarray, target: np.ndarray, cls: str,
                   margin: float, reps: int, rng: np.random.Generator) -> np.ndarray | None:
    """Class scores (this direction) of pairs exactly at the margin, simulated ``reps`` times."""
    s = source - source.mean(axis=0)
    t = target - target.mean(axis=0)
    signal = s @ fitted_map(source, target, cls)
    sig2 = float(np.sum(signal * signal))
    if sig2 <= 1e-24 * max(float(np.sum(t * t)), 1e-300):
        return None
    resid = t - signal
    shape = resid if float(np.sum(resid * resid)) > 1e-12 * sig2 else t
    out = np.empty(reps)
    for r in range(reps):
        noise = shape[rng.permutation(shape.shape[0])]
        noise *= np.sqrt(margin / (1.0 - margin) * sig2 / float(np.sum(noise * noise)))
        err = fits.errors(signal + noise, CLASS_ESTIMATORS[cls])
        out[r] = class_scores(err)[cls]
    return out


def assess_chain(X: np.ndarray, Y: np.ndarray, *, stats: bool, n_permutations: int,
                 n_margin: int, n_boot: int, margin: float, alpha: float,
                 rng: np.random.Generator) -> ChainEvidence:
    """Scores, references and verdicts of the chain classes for ``(A, B) = (X, Y)``."""
    n = X.shape[0]
    folds = Folds.split(n, rng, duplicate_groups(X, Y))
    fx, fy = SourceFits(X, folds), SourceFits(Y, folds)
    err = {"B from A": fx.errors(Y, keep_residuals=True),
           "A from B": fy.errors(X, keep_residuals=True)}
    observed = {d: class_scores(e) for d, e in err.items()}
    classes = [c for c in CHAIN if c in observed["B from A"]]
    results = {c: ClassEvidence(c) for c in CHAIN}
    if X.shape[1] != Y.shape[1]:
        results["permutation"].reason = (
            f"widths differ ({X.shape[1]} vs {Y.shape[1]}): no permutation of units maps one "
            "onto the other")
    for c in classes:
        r = results[c]
        r.directions = {d: float(observed[d][c]) for d in DIRECTIONS}
        r.score = min(r.directions.values())
    # interval: resample the held-out rows (the fitted maps fixed), both directions alike
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    boot = {d: class_scores(e, weights) for d, e in err.items()}
    for c in classes:
        both = np.minimum(boot["B from A"][c], boot["A from B"][c])
        lo, hi = np.quantile(both, [alpha / 2, 1 - alpha / 2])
        results[c].ci = (float(lo), float(hi))
    if not stats:
        for c in classes:
            results[c].reason = ("statistics off: the score is not compared with its null or "
                                 "its margin, so no verdict")
        return ChainEvidence(results, err)

    null = {c: np.empty(n_permutations) for c in classes}
    for i in range(n_permutations):
        # B's rows permuted, both directions on the same pairs *and the same folds of pairs*
        # as the observed score: B from A predicts B[π] from A (A's factorisations reused);
        # A from B predicts A from B[π], whose folds hold other rows of B, so B[π] is
        # factorised afresh.  (Reusing B's factorisations with A[π⁻¹] as the target splits
        # the pairs differently in the two directions, which decorrelates them, lowers the
        # null's minimum and made the permutation p-value anti-conservative: 14 of 100
        # unrelated 60 × 40 pairs had p ≤ 0.05.)
        perm = rng.permutation(n)
        a = class_scores(fx.errors(Y[perm]))
        b = class_scores(SourceFits(Y[perm], folds).errors(X))
        for c in classes:
            null[c][i] = min(a[c], b[c])
    sources = {"B from A": (fx, X, Y), "A from B": (fy, Y, X)}
    for c in classes:
        r = results[c]
        record_null(r, null[c], alpha)
        r.sims = {d: _margin_scores(f, s, t, c, margin, n_margin, rng)
                  for d, (f, s, t) in sources.items()}
        r.simulate = _simulator(sources, c, n_margin, rng)
    return ChainEvidence(results, err)


def _simulator(sources: dict, cls: str, reps: int, rng: np.random.Generator):
    """``simulate(shared)``: class scores, per direction, of pairs sharing that variance."""
    def simulate(shared: float) -> dict[str, np.ndarray | None]:
        return {d: _margin_scores(f, s, t, cls, 1.0 - shared, reps, rng)
                for d, (f, s, t) in sources.items()}
    return simulate


#: shared-variance levels searched for the smallest effect detected with 80 % power
_DETECT_LEVELS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)


def detectable_share(r: ClassEvidence, threshold: float) -> float | None:
    """Smallest shared variance (of :data:`_DETECT_LEVELS`) whose simulated pairs score above
    ``threshold`` in both directions with probability ≥ 0.8 (bisection; power is taken as
    the product of the two directions' rates, which understates it, so the answer errs large).
    ``None`` when even the largest level is not detected reliably."""
    if r.simulate is None:
        return None

    def power(level: float) -> float:
        sims = r.simulate(level)
        if any(s is None for s in sims.values()):
            return 0.0
        return float(np.prod([np.mean(s > threshold) for s in sims.values()]))

    lo, hi = 0, len(_DETECT_LEVELS) - 1
    if power(_DETECT_LEVELS[hi]) < 0.8:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if power(_DETECT_LEVELS[mid]) >= 0.8:
            hi = mid
        else:
            lo = mid + 1
    return _DETECT_LEVELS[lo]


def decide_chain(results: dict[str, ClassEvidence], margin: float, alpha: float) -> None:
    """Verdicts of the chain classes whose p-values are set (adjusted), then the nesting rule."""
    for r in results.values():
        if r.pvalue is not None:
            _decide(r, r.sims, margin, alpha)
    _nest(results)


def _decide(r: ClassEvidence, sims: dict[str, np.ndarray | None], margin: float,
            alpha: float) -> None:
    null = r.null or {}
    above = r.pvalue is not None and r.pvalue <= alpha
    if any(s is None for s in sims.values()):
        r.verdict = "unrelated" if not above else "undetermined"
        r.reason = ("the best map of this class explains none of the variance, so the margin "
                    "cannot be simulated")
        return
    z = float(ndtri(1.0 - alpha))
    means = {d: float(s.mean()) for d, s in sims.items()}
    sds = {d: float(s.std(ddof=1)) for d, s in sims.items()}
    upper = {d: means[d] + z * sds[d] for d in sims}
    lower = {d: means[d] - z * sds[d] for d in sims}
    binding = min(means, key=means.get)
    r.ceiling = means[binding]
    r.ceiling_band = (lower[binding], upper[binding])
    span = r.ceiling - null["mean"]
    if span > 0 and r.score is not None and r.ci is not None:
        r.position = (r.score - null["mean"]) / span
        r.position_ci = ((r.ci[0] - null["mean"]) / span, (r.ci[1] - null["mean"]) / span)
    pct = f"{100 * margin:g} %"
    if not above and r.ceiling <= null["q95"]:
        r.verdict = "undetermined"
        r.reason = (f"not above chance ({describe_p(r)}), but at this n and these widths even a "
                    f"pair at the {pct} margin scores no better than chance (ceiling "
                    f"{r.ceiling:.3f}, null 95 % quantile {null['q95']:.3f}): the held-out fits "
                    "need more samples to judge this class")
        return
    if not above:
        r.verdict = "unrelated"
        r.detectable = detectable_share(r, null["q95"])
        r.reason = (f"not above chance ({describe_p(r)}); " + (
            f"a map of this class sharing {percent(r.detectable)} of the variance would have "
            "been detected with 80 % power (simulated at these shapes)"
            if r.detectable is not None else
            "even a map sharing 90 % of the variance would not be detected reliably here"))
        return
    if all(r.directions[d] >= upper[d] for d in sims):
        if lower[binding] <= null["q95"]:  # the margin itself is not told from chance
            r.verdict = "undetermined"
            r.reason = (f"above chance ({describe_p(r)}) and as high as a pair at the {pct} "
                        f"margin would score, but at this n and these widths such a pair is "
                        f"not told from unrelated data (the margin's lower {100 * alpha:g} % "
                        f"quantile {lower[binding]:.3f} is within chance: null 95 % quantile "
                        f"{null['q95']:.3f}): the held-out fits need more samples to call "
                        "this class equivalent")
        else:
            r.verdict = "equivalent"
            r.reason = (f"in both directions the held-out R² exceeds what a pair with {pct} of "
                        f"its variance unexplained would reach ({max(upper.values()):.3f})")
    elif any(r.directions[d] <= lower[d] for d in sims):
        r.verdict = "partial"
        worst = min(sims, key=lambda d: r.directions[d] - lower[d])
        r.reason = (f"above chance ({describe_p(r)}) but outside the {pct} margin: {worst} "
                    f"the held-out R² is {r.directions[worst]:.3f}, below the margin's "
                    f"{lower[worst]:.3f}")
    else:
        r.verdict = "undetermined"
        r.ambiguous = True
        r.reason = (f"above chance ({describe_p(r)}), but the data cannot tell whether the "
                    f"unexplained variance is within the {pct} margin (more samples would)")


def record_null(r: ClassEvidence, null: np.ndarray, alpha: float,
                ci: tuple[float, float] | None = None) -> None:
    """Set ``r``'s permutation p-value (ties within 1e-12 count), its floor 1/(m + 1) and
    the null's summary; with ``ci``, also the score's and the interval's position between
    the null's mean (0) and the ceiling (1)."""
    tol = 1e-12 * max(1.0, abs(r.score))
    r.pvalue = (int(np.sum(null >= r.score - tol)) + 1) / (null.size + 1)
    r.p_floor = 1.0 / (null.size + 1)
    r.null = {"mean": float(null.mean()), "sd": float(null.std(ddof=1)),
              "q95": float(np.quantile(null, 1 - alpha)), "n_permutations": int(null.size)}
    if ci is not None:
        span = r.ceiling - r.null["mean"]
        if span > 0:
            r.position = (r.score - r.null["mean"]) / span
            r.position_ci = ((ci[0] - r.null["mean"]) / span, (ci[1] - r.null["mean"]) / span)


def describe_p(r: ClassEvidence) -> str:
    """The (Holm-adjusted) p-value in words, marked when the raw one is at its floor."""
    if r.pvalue is None:
        return "no test"
    raw = r.pvalue_raw if r.pvalue_raw is not None else r.pvalue
    if r.p_floor is not None and raw <= r.p_floor:
        perms = round(1 / r.p_floor) - 1
        return (f"p ≤ {r.pvalue:.2g} Holm-adjusted: none of {perms} permutations reached the "
                "observed score")
    return f"p = {r.pvalue:.2g} Holm-adjusted"


def percent(x: float) -> str:
    """A share in percent, with a decimal below 10 %."""
    return f"{100 * x:.1f} %" if x < 0.1 else f"{100 * x:.0f} %"


def strength(r: ClassEvidence) -> float | None:
    if r.verdict == "undetermined":
        return STRENGTH["ambiguous"] if r.ambiguous else None
    return STRENGTH[r.verdict]


def _nest(results: dict[str, ClassEvidence]) -> None:
    """A class is never judged more alike than a class that contains it."""
    for inner, outer in (("orthogonal", "linear"), ("permutation", "orthogonal")):
        a, b = results[inner], results[outer]
        sa, sb = strength(a), strength(b)
        if sa is None or sb is None or sa <= sb:
            continue
        a.verdict, a.ambiguous = b.verdict, b.ambiguous
        a.reason = (f"{a.reason}; lowered to the verdict of the {outer} class, which contains "
                    f"it ({b.verdict}): agreement up to a {inner} map implies agreement up to "
                    f"a {outer} one")
