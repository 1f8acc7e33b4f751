r"""The aspects outside the chain: neighbourhood structure and function (model outputs).

Both are averages over inputs of a per-input agreement ``a_i ∈ [0, 1]``:

* neighbourhood — ``a_i = |N_A(i) ∩ N_B(i)| / k``, the share of input i's k
  nearest neighbours (Euclidean) common to both representations: the mean is
  the registered ``mutual_knn``;
* function — ``a_i = 1`` when the two models predict the same class for
  input i (``argmax`` of (n, C) outputs, or 1-D integer labels): the mean is
  ``1 − disagreement``.

Both weigh every input equally.  The statistics are directly interpretable,
so the margin is stated on the statistic itself: at most ``margin`` of the
neighbours (default 20 %) or of the predictions (default 5 %) may differ, and
the ceiling is ``1 − margin``.  The null permutes the rows of B.  Verdicts:
``equivalent`` when the interval (percentile bootstrap over inputs) lies above
the ceiling and the null's 95 % quantile lies below it (else ``undetermined``),
``partial`` when above the null (permutation p ≤ α) and the interval lies below
the ceiling, ``unrelated`` when not above the null, else ``undetermined``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from repscope.core.errors import InputShapeError, RepscopeError
from repscope.inference.profile.chain import ClassEvidence, describe_p, record_null
from repscope.measures.neighbours import shared_neighbours
from repscope.measures.registry import measure

__all__ = ["assess_neighbourhood", "assess_function", "decide_aspect", "predicted_labels"]

_Z80 = 0.8416212335729143


def predicted_labels(outputs: Any, who: str) -> np.ndarray:
    """Class predictions from (n, C) scores (argmax) or 1-D integer labels."""
    a = np.asarray(outputs)
    if a.ndim == 1:
        if a.dtype.kind not in "iub" and not np.all(np.equal(np.mod(a, 1), 0)):
            raise InputShapeError(f"{who}: 1-D outputs must be integer class labels")
        return a.astype(np.int64)
    if a.ndim != 2:
        raise InputShapeError(f"{who}: outputs must be (n, C) scores or (n,) labels, got "
                              f"shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputShapeError(f"{who}: outputs contain NaN or infinite values")
    return np.argmax(a, axis=1)


def _assess(r: ClassEvidence, agree: np.ndarray, null_fn: Callable[[np.ndarray], float], *,
            stats: bool, n_permutations: int, n_boot: int, margin: float, alpha: float,
            rng: np.random.Generator) -> ClassEvidence:
    n = agree.size
    r.score = float(agree.mean())
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) / n
    lo, hi = np.quantile(w @ agree, [alpha / 2, 1 - alpha / 2])
    r.ci = (float(lo), float(hi))
    r.ceiling = 1.0 - margin
    if not stats:
        r.reason = "statistics off: the score is not compared with its null, so no verdict"
        return r
    null = np.array([null_fn(rng.permutation(n)) for _ in range(n_permutations)])
    record_null(r, null, alpha, (lo, hi))
    return r


def decide_aspect(r: ClassEvidence, margin: float, alpha: float) -> None:
    """The verdict of an aspect whose (adjusted) p-value is set."""
    if r.pvalue is None or r.null is None or r.ci is None or r.score is None:
        return
    what = "the neighbours" if r.name == "neighbourhood" else "the predictions"
    lo, hi = r.ci
    pct = f"{100 * margin:g} %"
    if r.pvalue > alpha:
        r.verdict = "unrelated"
        r.detectable = float(min(1.0, r.null["q95"] + _Z80 * r.null["sd"]))
        r.reason = (f"not above chance ({describe_p(r)}); a share of common {what[4:]} of "
                    f"at least {r.detectable:.2f} would have been detected with 80 % power")
    elif lo >= r.ceiling:
        if r.null["q95"] >= r.ceiling:  # unrelated data already reach the margin
            r.verdict = "undetermined"
            r.reason = (f"above chance ({describe_p(r)}) and above the margin {r.ceiling:.2f}, "
                        f"but unrelated data of this shape already reach it (null 95 % "
                        f"quantile {r.null['q95']:.2f}): too few inputs for this k to call "
                        f"{what} alike")
        else:
            r.verdict = "equivalent"
            r.reason = (f"the interval lies above {r.ceiling:.2f}: at most {pct} of {what} "
                        "differ")
    elif hi < r.ceiling:
        r.verdict = "partial"
        r.reason = (f"above chance ({describe_p(r)}) but more than {pct} of {what} differ "
                    f"(interval up to {hi:.2f})")
    else:
        r.verdict = "undetermined"
        r.ambiguous = True
        r.reason = (f"above chance ({describe_p(r)}), but the interval contains the margin "
                    f"{r.ceiling:.2f}")


def assess_neighbourhood(X: np.ndarray, Y: np.ndarray, *, k: int, **kw: Any) -> ClassEvidence:
    """Mutual k-nearest-neighbour agreement with its null, interval and verdict."""
    r = ClassEvidence("neighbourhood")
    n = X.shape[0]
    if n < k + 2:
        r.reason = f"k = {k} neighbours need at least {k + 2} inputs, got {n}"
        return r
    m = measure("mutual_knn", k=k)
    try:
        nx, ny = m.neighbours(m.prepare(X, "X")), m.neighbours(m.prepare(Y, "Y"))
    except RepscopeError as exc:
        r.reason = f"{type(exc).__name__}: {exc}"
        return r
    agree = shared_neighbours(nx, ny)[1] / k

    def null_fn(perm: np.ndarray) -> float:
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(perm.size)
        permuted = type(ny)(inverse[ny.indices[perm]], ny.distances[perm], ny.metric)
        return float(np.mean(shared_neighbours(nx, permuted)[1]) / k)

    return _assess(r, agree.astype(np.float64), null_fn, **kw)


def assess_function(outputs: tuple[Any, Any], n: int, **kw: Any) -> ClassEvidence:
    """Agreement of the two models' predictions with its null, interval and verdict."""
    r = ClassEvidence("function")
    la = predicted_labels(outputs[0], "outputs of A")
    lb = predicted_labels(outputs[1], "outputs of B")
    if la.shape[0] != n or lb.shape[0] != n:
        raise InputShapeError(f"outputs have {la.shape[0]} and {lb.shape[0]} rows but the "
                              f"representations have {n}")
    agree = (la == lb).astype(np.float64)
    return _assess(r, agree, lambda perm: float(np.mean(la == lb[perm])), **kw)
