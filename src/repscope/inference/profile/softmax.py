r"""The softmax family's class: ``f ↦ A f`` together with ``g ↦ A⁻ᵀ g + c``.

For models ``p(y|x) ∝ exp(f(x)ᵀ g(y))`` (classifiers, language models), A and B are
the embeddings ``F_A``, ``F_B`` (n × M) of the same inputs and the profile is given
their unembeddings ``G_A``, ``G_B`` over the same K labels.  Two such models define
the same distribution if and only if (under the diversity condition) they are
related by an invertible ``A`` acting on f with ``A⁻ᵀ`` on g, plus a shift of g
(Nielsen et al., NeurIPS 2025, Theorem 2.2).  Within the class the *log-odds*
are unchanged; centred over the labels they do not depend on a pivot label::

    z_A(x) = G̃_A f_A(x),    G̃ = G − (mean of the rows of G)      (K values per input)

**Statistic.**  How much of each model's log-odds variance the other's log-odds
reproduce, without fitting anything (the class's map is fixed by G)::

    R²(B from A) = 1 − Σ_x ‖z_B(x) − z_A(x)‖² / Σ_x ‖z_B(x) − z̄_B‖²

and A from B likewise; the score is the smaller.  It is 1 exactly on the class
and weighs labels and inputs by their log-odds variance.  It is computed in the
M-dimensional spaces: with the thin QR factorisation ``[G̃_A, −G̃_B] = Q R``,
``‖z_A(x) − z_B(x)‖ = ‖R (f_A(x); f_B(x))‖``, so the cost is ``O(K·M²)`` once and
``O(n·M)`` per permutation, at any K, and a pair in the class scores 1 to
rounding (no difference of large sums).

**References**, as for the profile's other classes: the **null** permutes the
contexts (rows of B and of f_B); the **margin** allows ``margin`` (5 %) of each
model's log-odds variance to differ; since nothing is fitted, the statistic is
not biased down at finite n and its **ceiling** is ``1 − margin`` itself (as for
the neighbourhood and function classes); the **interval** is a percentile
bootstrap over inputs.  Verdicts: ``equivalent`` when the interval lies above
the ceiling; ``partial`` when above the null and the interval below the
ceiling; ``unrelated`` when not above the null; else ``undetermined``.

The class is a statement about distributions as much as about representations:
``equivalent`` here means the two models predict alike (as log-odds), and then
f_A and f_B are related by an invertible linear map whenever the unembeddings
span R^M; the ``linear`` class of the same profile checks that map on f directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.core.errors import InputShapeError
from repscope.core.validation import as_representation
from repscope.inference.profile.chain import ClassEvidence, describe_p, record_null

__all__ = ["assess_softmax", "check_unembeddings", "decide_softmax"]

_Z80 = 0.8416212335729143


def check_unembeddings(unembeddings: Any, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G_A, G_B)``: float64 (K × d_A) and (K × d_B) over the same K ≥ 2 labels."""
    if not (isinstance(unembeddings, tuple) and len(unembeddings) == 2):
        raise InputShapeError("unembeddings must be a pair (G_A, G_B)")
    ga = np.asarray(as_representation(unembeddings[0], "G_A", min_samples=2), dtype=np.float64)
    gb = np.asarray(as_representation(unembeddings[1], "G_B", min_samples=2), dtype=np.float64)
    if ga.shape[0] != gb.shape[0]:
        raise InputShapeError(f"G_A and G_B must list the same labels: {ga.shape[0]} and "
                              f"{gb.shape[0]} rows")
    if ga.shape[1] != dx or gb.shape[1] != dy:
        raise InputShapeError(f"G_A must have A's width {dx} and G_B B's width {dy}; got "
                              f"{ga.shape[1]} and {gb.shape[1]}")
    return ga, gb


def _rank(a: np.ndarray) -> int:
    s = np.linalg.svd(a, compute_uv=False)
    return int(np.sum(s > s[0] * max(a.shape) * 1e-12)) if s.size and s[0] > 0 else 0


def assess_softmax(X: np.ndarray, Y: np.ndarray, unembeddings: tuple[np.ndarray, np.ndarray],
                   *, stats: bool, n_permutations: int, n_boot: int, margin: float,
                   alpha: float, rng: np.random.Generator) -> tuple[ClassEvidence, tuple[str, ...]]:
    """Score, interval, null and references of the softmax class (verdict: :func:`decide_softmax`).

    ``X``, ``Y``: the embeddings in their own units (the class is not scale invariant:
    a common factor on all logits is a temperature, another distribution)."""
    r = ClassEvidence("softmax")
    ga, gb = unembeddings
    ga = ga - ga.mean(axis=0)
    gb = gb - gb.mean(axis=0)
    notes = tuple(f"the centred unembeddings of {w} span {k} of its {g.shape[1]} dimensions: "
                  f"directions of f_{w} outside them do not change the distribution"
                  for w, g in (("A", ga), ("B", gb)) if (k := _rank(g)) < g.shape[1])
    dx = X.shape[1]
    rfac = np.linalg.qr(np.hstack([ga, -gb]), mode="r")
    u, v = X @ rfac[:, :dx].T, Y @ rfac[:, dx:].T  # z_A − z_B ≅ u + v (rotated by Q)
    err = np.sum((u + v) ** 2, axis=1)
    ua, vb = u - u.mean(axis=0), v - v.mean(axis=0)
    base = {"B from A": np.sum(vb * vb, axis=1), "A from B": np.sum(ua * ua, axis=1)}
    if min(float(b.sum()) for b in base.values()) <= 0:
        r.reason = "the log-odds of one model do not vary over the inputs"
        return r, notes
    r.directions = {d: float(1.0 - err.sum() / b.sum()) for d, b in base.items()}
    r.score = min(r.directions.values())
    n = X.shape[0]
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    boot = np.minimum(*(1.0 - (w @ err) / (w @ b) for b in base.values()))
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    r.ci = (float(lo), float(hi))
    r.ceiling = 1.0 - margin
    if not stats:
        r.reason = "statistics off: the score is not compared with its null, so no verdict"
        return r, notes
    su, sv = float(np.sum(u * u)), float(np.sum(v * v))
    totals = {d: float(b.sum()) for d, b in base.items()}
    null = np.empty(n_permutations)
    for i in range(n_permutations):
        e = su + sv + 2.0 * float(np.sum(u * v[rng.permutation(n)]))
        null[i] = min(1.0 - e / t for t in totals.values())
    record_null(r, null, alpha, (lo, hi))
    return r, notes


def decide_softmax(r: ClassEvidence, margin: float, alpha: float) -> None:
    """The verdict of the softmax class once its (Holm-adjusted) p-value is set."""
    if r.pvalue is None or r.null is None or r.ci is None or r.score is None:
        return
    lo, hi = r.ci
    pct = f"{100 * margin:g} %"
    if r.pvalue > alpha:
        r.verdict = "unrelated"
        r.detectable = float(min(1.0, r.null["q95"] + _Z80 * r.null["sd"]))
        r.reason = (f"not above chance ({describe_p(r)}); a log-odds R² of at least "
                    f"{r.detectable:.3g} would have been detected with 80 % power (unrelated "
                    "log-odds score below 0: their differences add both variances)")
    elif lo >= r.ceiling:
        r.verdict = "equivalent"
        r.reason = (f"the interval lies above {r.ceiling:.2f}: at most {pct} of each model's "
                    "log-odds variance differs, so the two are close to one model up to "
                    "f ↦ A f, g ↦ A⁻ᵀ g")
    elif hi < r.ceiling:
        r.verdict = "partial"
        r.reason = (f"above chance ({describe_p(r)}) but more than {pct} of the log-odds "
                    f"variance differs (interval up to {hi:.3g})")
    else:
        r.verdict = "undetermined"
        r.ambiguous = True
        r.reason = (f"above chance ({describe_p(r)}), but the interval contains the margin "
                    f"{r.ceiling:.2f}")
