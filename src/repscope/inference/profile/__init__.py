"""The invariance profile: in which precise senses are two representations alike?

::

    p = repscope.profile(A, B)
    p.sentence
    # 'Equivalent up to rotation (held-out R² 0.99 [0.99, 0.99] in both directions;
    #  margin: ≤ 5 % of the variance unexplained), but not up to a permutation of units
    #  (partial, held-out R² 0.31 [0.29, 0.33]); neighbourhood structure: partial
    #  (mutual kNN 0.62).'
    p["orthogonal"].verdict, p["orthogonal"].ci, p.to_dict()

Each class gets a graded verdict — ``equivalent``, ``partial``, ``unrelated``
or ``undetermined`` — from its statistic, the statistic's permutation null,
an equivalence margin in interpretable units and the statistic's value at
that margin simulated at the observed shapes (the ceiling); never from a
fixed threshold on a raw score.  The modules:

* :mod:`.fits` — held-out R² of the best map of each class, in both directions;
* :mod:`.chain` — null, margin simulation and verdict of the nested classes;
* :mod:`.aspects` — neighbourhood structure and function (model outputs);
* :mod:`.spectrum` — which principal directions are shared;
* :mod:`.result` — :class:`ClassVerdict`, :class:`InvarianceProfile`, the sentence.

The rules, with their reasons and measured behaviour, are in ``docs/profile.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.core.arrays import to_numpy
from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.core.validation import check_not_constant, check_pair
from repscope.core.warning_capture import capture_warnings
from repscope.inference.heldout import heldout_splits
from repscope.inference.multiple_testing import holm_adjust
from repscope.inference.profile.aspects import (
    assess_function,
    assess_neighbourhood,
    decide_aspect,
)
from repscope.inference.profile.chain import (
    CHAIN,
    DECISION_RULES,
    ClassEvidence,
    assess_chain,
    decide_chain,
)
from repscope.inference.profile.result import (
    CLASS_ORDER,
    VERDICTS,
    ClassVerdict,
    InvarianceProfile,
    compose_sentence,
)
from repscope.inference.profile.softmax import (
    assess_softmax,
    check_unembeddings,
    decide_softmax,
)
from repscope.inference.profile.spectrum import direction_spectrum
from repscope.measures.registry import measure

__all__ = ["CLASS_ORDER", "DECISION_RULES", "VERDICTS", "ClassVerdict", "InvarianceProfile",
           "profile", "MIN_SAMPLES"]

#: fewest inputs for the held-out fits of the chain classes (two halves of at least 10)
MIN_SAMPLES = 20

_STATISTICS: dict[str, tuple[str, str]] = {
    "permutation": ("held-out R² of the best permutation of units (with scale), the smaller "
                    "of the two directions", "variance-weighted"),
    "orthogonal": ("held-out R² of the best orthogonal map (rotation or reflection, with "
                   "scale), the smaller of the two directions", "variance-weighted"),
    "linear": ("held-out R² of the best linear map (ridge regression), the smaller of the two "
               "directions", "variance-weighted"),
    "neighbourhood": ("mutual k nearest neighbours: the share of each input's k neighbours "
                      "common to both", "equal per input"),
    "function": ("agreement of the two models' predicted classes", "equal per input"),
    "softmax": ("R² of each model's log-odds (logits centred over the labels) by the other's, "
                "nothing fitted, the smaller of the two directions", "variance-weighted"),
}


def _check_fraction(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
        raise InvalidParameterError(f"{name} must be a number in (0, 1), got {v!r}")
    return float(v)


def _check_count(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise InvalidParameterError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _verdict(e: ClassEvidence, margin: dict[str, Any], others: dict[str, float] | None = None,
             warnings: tuple[str, ...] = ()) -> ClassVerdict:
    statistic, weighting = _STATISTICS[e.name]
    if e.name == "neighbourhood":
        statistic = statistic.replace(" k ", f" k = {margin['k']} ")
    return ClassVerdict(
        name=e.name, verdict=e.verdict, statistic=statistic, weighting=weighting,
        score=e.score, ci=e.ci, null=e.null,
        margin={k: v for k, v in margin.items() if k != "k"}, ceiling=e.ceiling,
        reason=e.reason, pvalue=e.pvalue, p_floor=e.p_floor, position=e.position,
        position_ci=e.position_ci, detectable=e.detectable, directions=e.directions,
        pvalue_raw=e.pvalue_raw,
        others=others or {}, warnings=warnings)


def _heldout_cca(X: np.ndarray, Y: np.ndarray, seed: int) -> tuple[dict[str, float], tuple]:
    """The equal-weighted counterpart of the linear class, for context."""
    with capture_warnings() as cw:
        try:
            values, _, _, _ = heldout_splits(measure("mean_cca"), X, Y, 0.5, seed=seed,
                                             n_splits=1)
        except RepscopeError:
            return {}, tuple(cw.messages)
    return {"held-out mean CCA": float(np.mean(values))}, tuple(cw.messages)


def profile(
    X: Any,
    Y: Any,
    *,
    outputs: tuple[Any, Any] | None = None,
    unembeddings: tuple[Any, Any] | None = None,
    stats: bool | int = True,
    margin: float = 0.05,
    neighbour_margin: float = 0.2,
    function_margin: float = 0.05,
    alpha: float = 0.05,
    n_permutations: int | None = None,
    n_margin: int = 20,
    n_boot: int = 200,
    k: int = 10,
    seed: int = 0,
) -> InvarianceProfile:
    """Graded verdicts, per invariance class, on how two representations agree.

    Parameters
    ----------
    X, Y : (n, d_A), (n, d_B) representations A and B of the same n inputs.
    outputs : optional ``(outputs_A, outputs_B)``: (n, C) scores or (n,) predicted
        labels of the two models on the same inputs, for the function class.
    unembeddings : optional ``(G_A, G_B)``, (K, d_A) and (K, d_B) over the same K labels,
        when A and B are the embeddings f of softmax-family models
        ``p(y|x) ∝ exp(f(x)ᵀ g(y))``: adds the ``softmax`` class (``f ↦ A f`` with
        ``g ↦ A⁻ᵀ g + c``, :mod:`.softmax`).  Its margin is ``margin`` of each model's
        log-odds variance.
    stats : compute the permutation nulls and margin simulations (default); without
        them every verdict is ``undetermined`` and says so.  An int sets
        ``n_permutations``.
    margin : share of each representation's variance that may stay unexplained
        by a map of a chain class for ``equivalent`` (default 5 %).
    neighbour_margin, function_margin : share of neighbours (20 %) or of
        predictions (5 %) that may differ.
    alpha : level of the tests and of the intervals (``1 − alpha``).
    n_permutations, n_margin, n_boot : rows-permuted nulls, margin simulations per
        class and direction, resamples for the intervals.  ``n_permutations=None``
        (default) takes the fewest with which a test can pass Holm's adjustment
        over the profile's classes: ``ceil(m / alpha)`` for ``m`` tested classes.
    k : neighbours of the neighbourhood class.
    seed : seed of the split, the permutations, simulations and resamples.

    Returns
    -------
    InvarianceProfile
        ``classes`` (a :class:`ClassVerdict` each), ``strongest``, ``shared``
        (which principal directions are predictable, both ways) and ``sentence``.

    Classes
    -------
    ===============  ===============================================  ==================
    class            statistic                                        weighting
    ===============  ===============================================  ==================
    permutation      held-out R² of the best unit permutation          variance-weighted
    orthogonal       held-out R² of the best orthogonal map            variance-weighted
    linear           held-out R² of the best linear map (ridge)        variance-weighted
    neighbourhood    mutual k-nearest-neighbour agreement              equal per input
    function         agreement of predicted classes                    equal per input
    softmax          R² of the log-odds, each model's by the other's   variance-weighted
    ===============  ===============================================  ==================

    ``softmax`` is present only when ``unembeddings`` are given.

    The chain scores are the smaller of the two directions (A from B, B from A)
    and are nested by construction (a class's score is the best among the
    fits whose map lies in it).  Verdict rules: :mod:`repscope.inference.profile.chain`
    and ``docs/profile.md``.
    """
    X, Y = check_pair(X, Y, min_samples=4)
    X = np.asarray(to_numpy(X), dtype=np.float64)
    check_not_constant(X, "A", "the invariance profile")
    check_not_constant(Y, "B", "the invariance profile")
    Y = np.asarray(to_numpy(Y), dtype=np.float64)
    gs = None if unembeddings is None else check_unembeddings(unembeddings, X.shape[1],
                                                               Y.shape[1])
    raw = (X, Y)  # the softmax class is not scale invariant (a temperature)
    # every statistic is invariant to isotropic scaling: work at unit scale, so squares
    # neither underflow nor overflow at extreme magnitudes
    X = X / np.max(np.abs(X)) if np.max(np.abs(X)) > 0 else X
    Y = Y / np.max(np.abs(Y)) if np.max(np.abs(Y)) > 0 else Y
    if stats is True or stats is False:
        use_stats = bool(stats)
    elif isinstance(stats, (int, np.integer)) and stats >= 19:
        use_stats, n_permutations = True, int(stats)
    else:
        raise InvalidParameterError(
            f"stats must be True, False or a number of permutations >= 19, got {stats!r}")
    margin = _check_fraction("margin", margin)
    neighbour_margin = _check_fraction("neighbour_margin", neighbour_margin)
    function_margin = _check_fraction("function_margin", function_margin)
    alpha = _check_fraction("alpha", alpha)
    m_tests = 4 + (outputs is not None) + (gs is not None)
    if n_permutations is None:  # the raw floor 1/(P+1) must lie below Holm's smallest α/m
        n_permutations = int(np.ceil(m_tests / alpha))
    n_permutations = _check_count("n_permutations", n_permutations, 19)
    n_margin = _check_count("n_margin", n_margin, 5)
    n_boot = _check_count("n_boot", n_boot, 50)
    k = _check_count("k", k, 1)
    # an input repeated (the same row in A and in B) is one input: keep its first copy,
    # so neither the held-out halves nor the neighbour lists see it twice
    _, keep = np.unique(np.hstack([X, Y]), axis=0, return_index=True)
    dropped = X.shape[0] - keep.size
    if dropped:
        keep = np.sort(keep)
        X, Y = X[keep], Y[keep]
        raw = (raw[0][keep], raw[1][keep])
        if outputs is not None and isinstance(outputs, tuple) and len(outputs) == 2:
            outputs = (np.asarray(outputs[0])[keep], np.asarray(outputs[1])[keep])
    n = X.shape[0]
    rng = np.random.default_rng(seed)
    common = dict(stats=use_stats, n_permutations=n_permutations, n_boot=n_boot, alpha=alpha)
    chain_margin = {"value": margin, "alpha": alpha, "text": f"at most {100 * margin:g} % of each "
                    "representation's variance unexplained by a map of the class"}

    evidence: dict[str, ClassEvidence] = {}
    others: dict[str, dict[str, float]] = {}
    warned: tuple[str, ...] = ()
    shared: list[dict[str, Any]] = []
    if n < MIN_SAMPLES:
        for c in CHAIN:
            evidence[c] = ClassEvidence(c, reason=f"too few inputs for held-out fits (n = {n} "
                                        f"< {MIN_SAMPLES})")
    else:
        with capture_warnings() as cw:
            ev = assess_chain(X, Y, n_margin=n_margin, margin=margin, rng=rng, **common)
        cca, cca_warnings = _heldout_cca(X, Y, seed)
        evidence.update(ev.results)
        others["linear"] = cca
        warned = tuple(cw.messages) + cca_warnings
        shared = [direction_spectrum(ev.errors["B from A"], Y, "B", "A").summary(),
                  direction_spectrum(ev.errors["A from B"], X, "A", "B").summary()]
    evidence["neighbourhood"] = assess_neighbourhood(X, Y, k=k, margin=neighbour_margin,
                                                     rng=rng, **common)
    if outputs is None:
        evidence["function"] = ClassEvidence("function", reason="no model outputs given")
    else:
        if not (isinstance(outputs, tuple) and len(outputs) == 2):
            raise InvalidParameterError("outputs must be a pair (outputs_A, outputs_B)")
        evidence["function"] = assess_function(outputs, n, margin=function_margin, rng=rng,
                                               **common)
    softmax_notes: tuple[str, ...] = ()
    if gs is not None:
        evidence["softmax"], softmax_notes = assess_softmax(
            raw[0], raw[1], gs, margin=margin, rng=rng, **common)
    # the classes of one profile are one family: Holm's adjustment of their p-values
    tested = [e for e in evidence.values() if e.pvalue is not None]
    for e, adjusted in zip(tested, holm_adjust([e.pvalue for e in tested]) if tested else []):
        e.pvalue_raw, e.pvalue = e.pvalue, float(adjusted)
    decide_chain({c: evidence[c] for c in CHAIN}, margin, alpha)
    decide_aspect(evidence["neighbourhood"], neighbour_margin, alpha)
    decide_aspect(evidence["function"], function_margin, alpha)
    if gs is not None:
        decide_softmax(evidence["softmax"], margin, alpha)

    margins = {c: chain_margin for c in CHAIN}
    margins["neighbourhood"] = {
        "value": neighbour_margin, "alpha": alpha, "k": k,
        "text": f"at most {100 * neighbour_margin:g} % of each input's {k} nearest neighbours "
                "differ"}
    margins["function"] = {"value": function_margin, "alpha": alpha, "text": f"at most "
                           f"{100 * function_margin:g} % of the predictions differ"}
    order = CLASS_ORDER
    if gs is not None:
        order = (*CLASS_ORDER, "softmax")
        margins["softmax"] = {"value": margin, "alpha": alpha, "text": f"at most "
                              f"{100 * margin:g} % of each model's log-odds variance differs"}
    notes = {c: warned for c in CHAIN}
    notes["softmax"] = softmax_notes
    verdicts = {c: _verdict(evidence[c], margins[c], others.get(c), notes.get(c, ()))
                for c in order}
    classes = {c: verdicts[c] for c in order}
    strongest, sentence = compose_sentence(classes, shared)
    if dropped:
        sentence += (f" (Judged on {n} distinct inputs: {dropped} rows repeated an input "
                     "already present in both A and B and were dropped.)")
    settings = {"margin": margin, "neighbour_margin": neighbour_margin,
                "function_margin": function_margin, "alpha": alpha,
                "n_permutations": n_permutations if use_stats else 0,
                "n_margin": n_margin if use_stats else 0, "n_boot": n_boot, "k": k,
                "seed": seed, "repeated_inputs_dropped": int(dropped)}
    return InvarianceProfile(classes=classes, strongest=strongest, shared=shared,
                             sentence=sentence, n=n, dx=int(X.shape[1]), dy=int(Y.shape[1]),
                             stats=use_stats, settings=settings)
