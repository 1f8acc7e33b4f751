r"""The log-likelihood variance distance :math:`d^\lambda_{LLV}` (Nielsen et al., NeurIPS 2025).

Notation: ``ℓ(y, x) = ln p(y|x)`` and ``ℓ'(y, x) = ln p'(y|x)`` for the two models,
``X`` the evaluation inputs, ``SD`` the sample standard deviation (ddof = 1).
Choices: a pivot label ``y₀``, a left-out label ``y_lo`` (``Y* = Y \ {y_lo}``) and an
input set ``S = {x₀ (pivot), x₁, …, x_M}``.

Label side, for every ``y ∈ Y* \ {y₀}`` (scales of the log-odds against the pivot)::

    σ_y  = SD_x[ ℓ(y,x) − ℓ(y₀,x) ],            σ'_y likewise for ℓ'
    a_y  = SD_x[ ℓ(y,x)/σ_y  − ℓ'(y,x)/σ'_y  ]
    b_y  = SD_x[ ℓ(y₀,x)/σ_y − ℓ'(y₀,x)/σ'_y ]
    T1   = max_y max(a_y, b_y),       T3 = max_y |σ_y − σ'_y|

Input side, for ``i = 1..M`` (SD over **all** K labels)::

    τ_i  = SD_y[ ℓ(y,x_i) − ℓ(y,x₀) ],          τ'_i likewise
    c_i  = SD_y[ ℓ(y,x_i)/τ_i − ℓ'(y,x_i)/τ'_i ]
    e_i  = SD_y[ ℓ(y,x₀)/τ_i  − ℓ'(y,x₀)/τ'_i  ]
    T2   = max_i max(c_i, e_i),       T4 = max_i |τ_i − τ'_i|

    d^λ_LLV = max{T1, T2, λ·T3, λ·T4}       (λ = 1e-5 in the paper)

How the choices are made.  The pivot and left-out label minimise T1 over all
K·(K−1) ordered pairs — exactly, without enumerating them: for a fixed pivot
the best label to leave out is the one with the largest term, and every term
of every pivot follows from two K × K covariance matrices of the
log-likelihoods over the inputs (:mod:`.label_side` has the derivation; about
``n·K²`` multiply-adds, so K in the thousands takes seconds).  The input set
minimises T2 over ``n_candidates`` random candidate sets (disjoint when
``(M+1)·n_candidates ≤ n``), with the reference implementation's rule that a
candidate is only preferred to the first one when its T2 is below 1; T2 is
therefore an upper bound of its minimum over all input sets, and the result
reports the search budget.  T3 and T4 use the chosen labels and inputs.

Properties: every term depends on the two models only through their
log-likelihoods, so the distance is 0 when ``p = p'`` (in particular for
linearly equivalent models, whatever the search picks).  Dividing by σ and τ
makes T1 and T2 invariant to a common temperature of all logits; T3 and T4
detect scale differences with the small weight λ.  Standardised log-odds satisfy
``SD[Δ_y − Δ₀] ≤ 2·T1``, which is what bounds the representational
dissimilarity: ``d_{f,g} ≤ 2·d_LLV`` (see :mod:`.dissimilarity`).

Cost: the label side is ``O(n·K²)`` (:mod:`.label_side`) and the input search
``O(n_candidates·M·K)``.

Alternatives kept from the authors' code (not used in the paper):
``aggregate="sum"`` adds the four terms; ``reduce="mean"`` averages instead of
maximising T1, T3 and T4 (T2 always uses the max).

Reference: B. M. G. Nielsen, E. Marconato, A. Dittadi, L. Gresele, "When Does
Closeness in Distribution Imply Representational Similarity? An
Identifiability Perspective", NeurIPS 2025 (Definition 4.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repscope.core.errors import InputShapeError, InsufficientSamplesError, InvalidParameterError
from repscope.identifiability.label_side import direct_label_terms, exact_label_side
from repscope.identifiability.model import (
    DiversityConditionError,
    SoftmaxModel,
    as_index_tuple,
    check_model_pair,
)

__all__ = ["DEFAULT_N_CANDIDATES", "LLVResult", "llv_distance"]

#: default number of random candidate input sets searched for T2
DEFAULT_N_CANDIDATES = 200
#: reference rule: a candidate input set replaces the first one only when its T2 < this
_T2_CAP = 1.0
#: cap on the float64 elements of one block of candidate input-side arrays
_BLOCK = 4_000_000


@dataclass(frozen=True)
class LLVResult:
    """The distance ``d^λ_LLV`` with every intermediate quantity.

    Attributes
    ----------
    distance : ``max{T1, T2, λT3, λT4}`` (or their sum with ``aggregate="sum"``).
    t1, t2, t3, t4 : the four terms (T3, T4 unweighted).
    pivot, left_out : chosen pivot label ``y₀`` and left-out label ``y_lo``.
    input_set : chosen inputs ``(x₀, x₁, …, x_M)``, pivot first (row indices of F).
    labels : the labels ``Y* \\ {y₀}`` entering T1 and T3 (same order as the arrays below).
    a_terms, b_terms : ``a_y`` and ``b_y`` for ``labels``.
    sigma_a, sigma_b : ``σ_y`` and ``σ'_y`` for ``labels``.
    c_terms, e_terms, tau_a, tau_b : input-side terms and scales, ``i = 1..M``.
    candidate_sets, candidate_t2 : the searched input sets and their T2 (one row when
        ``input_set`` was given).
    lam, aggregate, reduce, n_candidates, seed : the settings used.
    searched : whether the input set came from the random search.
    lower : a lower bound of the distance: ``max(T1, λ·T3)`` (exact label side); the
        distance itself is an upper bound when the input set was searched (T2 is
        the smallest value found, not the minimum over all input sets).
    input_search : how the input set was found, in words (the search budget).
    rechecked : pivots evaluated from the definition after the exact label side
        (near-ties of the smallest T1).
    """

    distance: float
    t1: float
    t2: float
    t3: float
    t4: float
    pivot: int
    left_out: int
    input_set: tuple[int, ...]
    labels: tuple[int, ...]
    a_terms: np.ndarray = field(repr=False)
    b_terms: np.ndarray = field(repr=False)
    sigma_a: np.ndarray = field(repr=False)
    sigma_b: np.ndarray = field(repr=False)
    c_terms: np.ndarray = field(repr=False)
    e_terms: np.ndarray = field(repr=False)
    tau_a: np.ndarray = field(repr=False)
    tau_b: np.ndarray = field(repr=False)
    candidate_sets: np.ndarray = field(repr=False)
    candidate_t2: np.ndarray = field(repr=False)
    lam: float = 1e-5
    aggregate: str = "max"
    reduce: str = "max"
    n_candidates: int = DEFAULT_N_CANDIDATES
    seed: int | None = None
    searched: bool = True
    lower: float = float("nan")
    input_search: str = ""
    rechecked: int = 0

    def __float__(self) -> float:
        return self.distance

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (scalars, chosen labels and inputs, settings)."""
        return {
            "d_llv": self.distance,
            "t1": self.t1,
            "t2": self.t2,
            "t3": self.t3,
            "t4": self.t4,
            "pivot": self.pivot,
            "left_out": self.left_out,
            "input_set": list(self.input_set),
            "lam": self.lam,
            "aggregate": self.aggregate,
            "reduce": self.reduce,
            "n_candidates": self.n_candidates,
            "seed": self.seed,
            "searched": self.searched,
            "d_llv_lower": self.lower,
            "label_side": "exact",
            "input_search": self.input_search,
        }


def _reduce(values: np.ndarray, how: str) -> float:
    return float(np.max(values) if how == "max" else np.mean(values))


# ------------------------------------------------------------------ input side
def _input_terms(
    la: np.ndarray, lb: np.ndarray, sets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``c, e, τ, τ'`` for candidate sets (C × (M+1)), each of shape (C, M); +inf where a
    scale vanishes."""
    a0, ai = la[sets[:, 0]][:, None, :], la[sets[:, 1:]]
    b0, bi = lb[sets[:, 0]][:, None, :], lb[sets[:, 1:]]
    ta = np.std(ai - a0, axis=2, ddof=1)
    tb = np.std(bi - b0, axis=2, ddof=1)
    ok = (ta > 0) & (tb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.std(ai / ta[..., None] - bi / tb[..., None], axis=2, ddof=1)
        e = np.std(a0 / ta[..., None] - b0 / tb[..., None], axis=2, ddof=1)
    bad = ~ok | ~np.isfinite(c) | ~np.isfinite(e)
    c[bad] = np.inf
    e[bad] = np.inf
    return c, e, ta, tb


def _t2_of_sets(la: np.ndarray, lb: np.ndarray, sets: np.ndarray) -> np.ndarray:
    per = max(1, _BLOCK // max(1, sets.shape[1] * la.shape[1]))
    out = []
    for start in range(0, sets.shape[0], per):
        c, e, _, _ = _input_terms(la, lb, sets[start : start + per])
        out.append(np.maximum(np.max(c, axis=1), np.max(e, axis=1)))
    return np.concatenate(out)


def draw_candidate_sets(
    n: int, size: int, n_candidates: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_candidates`` random input sets of ``size`` distinct indices (pivot first).

    The sets are disjoint (one draw without replacement of ``size·n_candidates``
    indices, as in the reference implementation) when ``size·n_candidates ≤ n``;
    otherwise each set is drawn independently without replacement.
    """
    if size * n_candidates <= n:
        return rng.choice(n, size=size * n_candidates, replace=False).reshape(n_candidates, size)
    return np.stack([rng.choice(n, size=size, replace=False) for _ in range(n_candidates)])


def _choose_input_set(t2: np.ndarray) -> int:
    finite = np.flatnonzero(np.isfinite(t2))
    if finite.size == 0:
        raise DiversityConditionError(
            "every candidate input set has a vanishing scale τ_i (f(x_i) - f(x_0) orthogonal to "
            "all unembedding differences, or repeated inputs); d_LLV is undefined for them. "
            "Try more candidates or check that the embeddings vary."
        )
    below = t2 < _T2_CAP
    if np.any(below):
        return int(np.argmin(np.where(below, t2, np.inf)))
    return int(finite[0])


def _on_device(la: np.ndarray, lb: np.ndarray, device: Any) -> tuple[Any, Any]:
    import torch

    dev = torch.device(device)
    return (torch.tensor(la, dtype=torch.float64, device=dev),
            torch.tensor(lb, dtype=torch.float64, device=dev))


# ------------------------------------------------------------------ public
def _check_settings(lam: float, n_candidates: int, aggregate: str, reduce: str) -> None:
    if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not (0 <= lam < np.inf):
        raise InvalidParameterError(f"lam must be a finite number >= 0, got {lam!r}")
    if (
        not isinstance(n_candidates, (int, np.integer))
        or isinstance(n_candidates, bool)
        or n_candidates < 1
    ):
        raise InvalidParameterError(
            f"n_candidates must be a positive integer, got {n_candidates!r}"
        )
    if aggregate not in ("max", "sum"):
        raise InvalidParameterError(f"aggregate must be 'max' or 'sum', got {aggregate!r}")
    if reduce not in ("max", "mean"):
        raise InvalidParameterError(f"reduce must be 'max' or 'mean', got {reduce!r}")


def llv_distance(
    a: SoftmaxModel,
    b: SoftmaxModel,
    lam: float = 1e-5,
    n_candidates: int = DEFAULT_N_CANDIDATES,
    seed: int | np.random.Generator | None = 0,
    input_set: Any = None,
    *,
    aggregate: str = "max",
    reduce: str = "max",
    pivot: int | None = None,
    left_out: int | None = None,
    device: Any = None,
) -> LLVResult:
    r"""Log-likelihood variance distance :math:`d^\lambda_{LLV}` between two models.

    See the module docstring for the formula.  The models must be evaluated on
    the same inputs (rows of F) and labels (rows of G) and share M.

    Parameters
    ----------
    a, b : SoftmaxModel
    lam : float
        Weight λ ≥ 0 of the scale-difference terms T3, T4 (paper: 1e-5).
    n_candidates : int
        Number of random candidate input sets searched for T2 (default 200; the
        paper's runs used 100–300).  Ignored when ``input_set`` is given.
    seed : int, Generator or None
        Seed of the input-set search (default 0: reproducible).  ``None`` draws
        fresh entropy.
    input_set : sequence of M+1 ints, optional
        Use these inputs ``(x₀, x₁, …, x_M)`` (pivot first) instead of searching;
        the result is then deterministic.
    aggregate : {"max", "sum"}
        How T1, T2, λT3, λT4 combine (paper: max).
    reduce : {"max", "mean"}
        How per-label terms reduce into T1, T3 and T4 (paper: max; T2 is always a max).
    pivot, left_out : int, optional
        Fix the pivot and/or left-out label instead of choosing them.
    device : torch device or str, optional
        Compute the label side (the ``n·K²`` part) with torch on this device
        (``"cuda"``, ``"cpu"``); default NumPy.

    Returns
    -------
    LLVResult

    Raises
    ------
    InputShapeError
        The models disagree in n, K or M, or ``input_set`` is malformed.
    InsufficientSamplesError
        Fewer than 3 labels (T1 needs one label besides the pivot and the left-out one).
    DiversityConditionError
        A log-odds scale σ or τ vanishes for every admissible choice.
    InvalidParameterError
        Bad ``lam``, ``n_candidates``, ``aggregate`` or ``reduce``.
    """
    check_model_pair(a, b, same_dim=True)
    _check_settings(lam, n_candidates, aggregate, reduce)
    k, m, n = a.n_labels, a.dim, a.n_inputs
    if k < 3:
        raise InsufficientSamplesError(
            f"d_LLV needs at least 3 labels (pivot, left-out and one more), got K={k}"
        )
    for name, val in (("pivot", pivot), ("left_out", left_out)):
        if val is not None and not (isinstance(val, (int, np.integer)) and 0 <= val < k):
            raise InputShapeError(f"{name} must be a label index in [0, {k}), got {val!r}")
    if pivot is not None and pivot == left_out:
        raise InputShapeError("pivot and left_out must be different labels")
    la, lb = a.log_likelihoods(), b.log_likelihoods()

    # label side: exact (covariances over the inputs; near-ties re-evaluated directly)
    xa, xb = (la, lb) if device is None else _on_device(la, lb, device)
    choice = exact_label_side(xa, xb, reduce=reduce, pivot=pivot, left_out=left_out)
    p, lo = choice.pivot, choice.left_out
    a_all, b_all, sa_all, sb_all = direct_label_terms(la, lb, p)
    keep = np.ones(k, dtype=bool)
    keep[[p, lo]] = False
    t1 = _reduce(np.concatenate([a_all[keep], b_all[keep]]), reduce)
    labels = tuple(y for y in range(k) if y not in (p, lo))
    idx = np.asarray(labels)
    t3 = _reduce(np.abs(sa_all[idx] - sb_all[idx]), reduce)

    # input side: given set, or random search on T2
    seed_repr: int | None = seed if isinstance(seed, (int, np.integer)) else None
    if input_set is not None:
        chosen = as_index_tuple(input_set, n, m + 1, "input_set")
        sets = np.asarray([chosen])
        searched = False
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        sets = draw_candidate_sets(n, m + 1, int(n_candidates), rng)
        searched = True
    cand_t2 = _t2_of_sets(la, lb, sets)
    if not searched and not np.isfinite(cand_t2[0]):
        raise DiversityConditionError(
            f"input_set {chosen} has a vanishing scale τ_i in one model (f(x_i) - f(x_0) "
            "orthogonal to every unembedding difference); choose other inputs"
        )
    best = 0 if not searched else _choose_input_set(cand_t2)
    chosen = tuple(int(i) for i in sets[best])
    c, e, ta, tb = (v[0] for v in _input_terms(la, lb, sets[best : best + 1]))
    t2 = float(max(np.max(c), np.max(e)))
    t4 = _reduce(np.abs(ta - tb), reduce)

    terms = (t1, t2, lam * t3, lam * t4)
    distance = float(max(terms) if aggregate == "max" else sum(terms))
    # T2 (and T4) come from a search, so the distance is an upper bound of the minimum
    # over input sets; the exact label side alone bounds it from below
    lower = float(max(t1, lam * t3) if aggregate == "max" else t1 + lam * t3)
    if searched:
        how = (f"random search: the best of {len(sets)} candidate input sets (seed "
               f"{seed_repr if seed_repr is not None else 'from a Generator'}); T2 is an "
               "upper bound of its minimum over all input sets")
    else:
        how = "given input set (no search); T2 is its value for that set"
    return LLVResult(
        distance=distance,
        t1=float(t1),
        t2=t2,
        t3=float(t3),
        t4=float(t4),
        pivot=int(p),
        left_out=int(lo),
        input_set=chosen,
        labels=labels,
        a_terms=a_all[idx],
        b_terms=b_all[idx],
        sigma_a=sa_all[idx],
        sigma_b=sb_all[idx],
        c_terms=c,
        e_terms=e,
        tau_a=ta,
        tau_b=tb,
        candidate_sets=sets,
        candidate_t2=cand_t2,
        lam=float(lam),
        aggregate=aggregate,
        reduce=reduce,
        n_candidates=int(n_candidates),
        seed=None if seed_repr is None else int(seed_repr),
        searched=searched,
        lower=lower,
        input_search=how,
        rechecked=choice.rechecked,
    )
