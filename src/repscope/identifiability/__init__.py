"""Identifiability-grounded comparison of softmax-family models.

Implements Nielsen, Marconato, Dittadi & Gresele, "When Does Closeness in
Distribution Imply Representational Similarity? An Identifiability
Perspective" (NeurIPS 2025):

* :class:`SoftmaxModel` — embeddings F (n × M) and unembeddings G (K × M) of a
  model ``p(y|x) ∝ exp(f(x)ᵀ g(y))`` evaluated on data;
* :func:`kl_divergence` — mean KL over inputs (both directions);
* :func:`llv_distance` — the log-likelihood variance distance ``d^λ_LLV``;
* :func:`representation_dissimilarity` — ``d_SVD(f)``, ``d_SVD(g)`` and ``d_{f,g}``,
  with ``d_{f,g} ≤ 2·d_LLV``;
* :func:`m_svd`, :class:`MeanSVD` — the PLS-SVD similarity; m_CCA is the
  registered measure ``repscope.measure("mean_cca")`` (see :func:`m_cca`);
* :func:`compare_next_token` (:mod:`.next_token`) — causal language models as
  softmax-family models: KL over the full vocabulary, d_LLV and d_{f,g} over the
  K most frequent next tokens, as a curve over K;
* :mod:`.constructions` — the permuted-circle (Table 1) and perturbed models;
* :mod:`.experiments` — the paper's experiments (``repscope paper …``).

Example::

    from repscope.identifiability import SoftmaxModel, llv_distance, representation_dissimilarity
    a, b = SoftmaxModel(F1, G1), SoftmaxModel(F2, G2)
    r = llv_distance(a, b, seed=0)
    d = representation_dissimilarity(a, b, r)
    r.distance, d.d_fg          # d_fg <= 2 * r.distance
"""

from __future__ import annotations

from typing import Any

from repscope.identifiability.constructions import (
    circle_model,
    permuted_circle_pair,
    perturbed_models,
)
from repscope.identifiability.dissimilarity import (
    DissimilarityResult,
    MeanSVD,
    bound_check,
    m_svd,
    representation_dissimilarity,
)
from repscope.identifiability.kl import KLResult, kl_divergence
from repscope.identifiability.llv import DEFAULT_N_CANDIDATES, LLVResult, llv_distance
from repscope.identifiability.model import (
    DatasetNotFoundError,
    DiversityConditionError,
    SoftmaxModel,
    log_softmax,
    one_hot_codes,
)
from repscope.identifiability.next_token import (
    NextTokenComparison,
    NextTokenStates,
    compare_next_token,
    load_causal_lm,
    next_token_kl,
    next_token_model,
    next_token_states,
)

__all__ = [
    "DEFAULT_N_CANDIDATES",
    "DatasetNotFoundError",
    "DissimilarityResult",
    "DiversityConditionError",
    "KLResult",
    "LLVResult",
    "MeanSVD",
    "NextTokenComparison",
    "NextTokenStates",
    "SoftmaxModel",
    "bound_check",
    "circle_model",
    "compare_models",
    "compare_next_token",
    "kl_divergence",
    "llv_distance",
    "load_causal_lm",
    "log_softmax",
    "m_cca",
    "m_svd",
    "next_token_kl",
    "next_token_model",
    "next_token_states",
    "one_hot_codes",
    "permuted_circle_pair",
    "perturbed_models",
    "representation_dissimilarity",
]


def m_cca(X: Any, Y: Any) -> float:
    """Mean canonical correlation of two representations (the registered ``mean_cca``)."""
    from repscope.measures.registry import measure

    return measure("mean_cca")(X, Y)


def compare_models(
    a: SoftmaxModel,
    b: SoftmaxModel,
    *,
    lam: float = 1e-5,
    n_candidates: int = DEFAULT_N_CANDIDATES,
    seed: int | None = 0,
    input_set: Any = None,
    budget: int = 20_000,
    max_enumerate: int = 100_000,
    device: Any = None,
) -> dict[str, Any]:
    """Every quantity for one pair: KL (both ways), d_LLV, d_{f,g}, m_CCA of F and of G.

    The label side of d_LLV is exact; its input side comes from a search over
    ``n_candidates`` input sets (``d_llv`` is then an upper bound, ``d_llv_lower`` a
    lower one).  ``d_fg`` is the lower end of an interval ``[d_fg_lower, d_fg_upper]``
    (the f side searched over label subsets with ``budget`` evaluations when there are
    more than ``max_enumerate``); ``"bound_check"`` compares the paper's bound
    ``d_fg ≤ 2M·d_LLV`` with the lower end, the only side that could falsify it.

    m_CCA values that are undefined for the inputs (e.g. too few labels for G)
    are reported as ``None`` with the reason under ``"m_cca_g_error"``; a
    degenerate regime (M >= K-1) is noted under ``"m_cca_g_warning"``.  With
    ``K - 2 < M`` there is no label subset for d_SVD(f): ``d_fg`` is ``None`` and
    ``"d_fg_error"`` says why.
    """
    import warnings

    from repscope.core.errors import DegeneracyWarning, InsufficientSamplesError, RepscopeError

    kl = kl_divergence(a, b)
    llv = llv_distance(a, b, lam=lam, n_candidates=n_candidates, seed=seed, input_set=input_set,
                       device=device)
    out: dict[str, Any] = {**kl.to_dict(), **llv.to_dict()}
    try:
        dis = representation_dissimilarity(a, b, llv, budget=budget,
                                           max_enumerate=max_enumerate)
        out.update(dis.to_dict())
        out["bound_check"] = bound_check(dis, llv)
    except InsufficientSamplesError as e:  # K - 2 < M: no label subset for d_SVD(f)
        out.update({"d_fg": None, "d_svd_f": None, "d_svd_g": None, "d_fg_error": str(e)})
    for side, x, y in (("f", a.F, b.F), ("g", a.G, b.G)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DegeneracyWarning)
            try:
                out[f"m_cca_{side}"] = m_cca(x, y)
            except RepscopeError as e:
                out[f"m_cca_{side}"] = None
                out[f"m_cca_{side}_error"] = str(e)
        notes = [str(w.message) for w in caught if issubclass(w.category, DegeneracyWarning)]
        if notes:
            out[f"m_cca_{side}_warning"] = notes[0]
    return out
