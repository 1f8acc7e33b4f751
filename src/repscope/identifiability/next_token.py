r"""Causal language models as softmax-family models: f over contexts, g over next tokens.

A causal language model's next-token distribution is the paper's model family:
with ``h(x)`` the last hidden state at the end of the context ``x`` and
``W`` (V × H), ``b`` the unembedding (``lm_head``),

.. math::  p(y \mid x) = \mathrm{softmax}_y\bigl(h(x)^\top W_y + b_y\bigr),

so ``f(x) = h(x)`` and ``g(y) = W_y``, with the bias ``b`` kept as a per-label bias
of :class:`~repscope.identifiability.SoftmaxModel` (the model ``f̃ = (f, 1)``,
``g̃ = (g, b)``; the paper's models have none).  The models here are evaluated on
held-out text, token id sequences given by the caller: every position of every
sequence that has a next token is one context (``x`` = the tokens up to and
including it), so ``n = Σ (len − 1)``.

* **KL** between two models' next-token distributions on the same contexts,
  exactly over the full vocabulary: logits ``h Wᵀ + b`` in float64 (from the
  hidden states and the unembedding, which are checked against the model's own
  logits) and a float64 log-softmax, blocked over contexts.
* **d_LLV and d_{f,g}** over a fixed label set: the K most frequent next tokens
  of the text (ties by token id), as a **curve over K** (default 256, 1024, 4096,
  capped by the vocabulary), because a rare token whose logits the two models
  do not match makes d_LLV saturate — the label set is part of the answer.  The
  label-restricted model renormalises over its K labels, as the paper's model
  family does over its label set.

Models: a Hugging Face causal LM (called with ``output_hidden_states=True``;
:func:`load_causal_lm` loads one from a local directory with
``local_files_only=True``, never downloading), or any torch module mapping
token ids (batch, T) to ``(logits, last_hidden)`` — or to an object with
``.logits`` and ``.hidden_states`` — whose unembedding is its
``get_output_embeddings()`` (an ``nn.Linear``), its ``lm_head`` or the
``unembedding=`` argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repscope.core.errors import InputShapeError, InvalidParameterError, RepscopeError
from repscope.identifiability.kl import KLResult
from repscope.identifiability.model import SoftmaxModel, log_softmax

__all__ = [
    "DEFAULT_LABEL_COUNTS",
    "NextTokenComparison",
    "NextTokenStates",
    "compare_next_token",
    "frequent_tokens",
    "load_causal_lm",
    "next_token_kl",
    "next_token_model",
    "next_token_states",
]

#: sizes of the label set for the curve (capped by the vocabulary)
DEFAULT_LABEL_COUNTS: tuple[int, ...] = (256, 1024, 4096)
#: the model's logits must match ``h Wᵀ + b`` to this, relative to the logits' scale
LOGIT_CHECK = 1e-3
#: float64 elements per block of the full-vocabulary KL
_BLOCK = 4_000_000


@dataclass(frozen=True)
class NextTokenStates:
    """One model on the contexts of a text: ``hidden`` (n × H) = f(x), the unembedding
    ``weight`` (V × H) and ``bias`` (V,) or None, the token following each context
    (``next_tokens``, n) and how far the model's logits were from ``h Wᵀ + b``
    (``logit_error``, relative to the largest logit)."""

    hidden: np.ndarray = field(repr=False)
    weight: np.ndarray = field(repr=False)
    bias: np.ndarray | None = field(repr=False)
    next_tokens: np.ndarray = field(repr=False)
    logit_error: float
    name: str | None = None

    @property
    def n_contexts(self) -> int:
        return int(self.hidden.shape[0])

    @property
    def vocab_size(self) -> int:
        return int(self.weight.shape[0])

    def logits(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """``h Wᵀ + b`` in float64 for the given contexts."""
        z = self.hidden[rows] @ self.weight.T
        return z if self.bias is None else z + self.bias


def load_causal_lm(path: Any, **kwargs: Any) -> Any:
    """A Hugging Face causal LM from a local directory (``local_files_only=True``), in eval
    mode.  Nothing is downloaded: a directory without the files raises."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, **kwargs)
    return model.eval()


def _is_hf(model: Any) -> bool:
    return type(model).__module__.startswith("transformers")


def _forward(model: Any, ids: Any) -> tuple[Any, Any]:
    if _is_hf(model):
        out = model(input_ids=ids, output_hidden_states=True)
        return out.logits, out.hidden_states[-1]
    out = model(ids)
    if isinstance(out, tuple) and len(out) == 2:
        return out
    if getattr(out, "logits", None) is not None and getattr(out, "hidden_states", None):
        return out.logits, out.hidden_states[-1]
    raise InvalidParameterError(
        "the model must return (logits, last_hidden_state), or an object with .logits and "
        ".hidden_states (a Hugging Face model is called with output_hidden_states=True)")


def _unembedding(model: Any, given: Any) -> tuple[np.ndarray, np.ndarray | None]:
    import torch

    def as64(t: Any) -> np.ndarray:
        if isinstance(t, torch.Tensor):
            t = t.detach().to("cpu", torch.float64).numpy()
        return np.array(t, dtype=np.float64)

    if given is not None:
        w, b = given if isinstance(given, tuple) else (given, None)
        return as64(w), None if b is None else as64(b).reshape(-1)
    head = None
    if callable(getattr(model, "get_output_embeddings", None)):
        head = model.get_output_embeddings()
    if head is None:
        head = getattr(model, "lm_head", None)
    if head is None or getattr(head, "weight", None) is None:
        raise InvalidParameterError(
            "cannot find the unembedding: the model has no get_output_embeddings() or lm_head "
            "with a .weight; pass unembedding=(W, b)")
    b = getattr(head, "bias", None)
    return as64(head.weight), None if b is None else as64(b).reshape(-1)


def _sequences(sequences: Any) -> list[np.ndarray]:
    import torch

    # a 2-D array or tensor is a batch of sequences of one length; a list may mix lengths
    seqs = [np.asarray(s.cpu() if isinstance(s, torch.Tensor) else s) for s in sequences]
    out = []
    for i, s in enumerate(seqs):
        if s.ndim != 1 or s.dtype.kind not in "iu":
            raise InputShapeError(f"sequence {i} must be a 1-D array of integer token ids")
        if s.size >= 2:
            out.append(s.astype(np.int64))
    if not out:
        raise InputShapeError("no sequence has two or more tokens (a context and its next token)")
    return out


def next_token_states(model: Any, sequences: Any, *, batch_size: int = 16,
                      device: Any = None, unembedding: Any = None, name: str | None = None
                      ) -> NextTokenStates:
    """Run a causal LM over token id sequences and collect f(x) at every context.

    Sequences of equal length run together in batches of ``batch_size``; the model
    runs in eval mode without gradients on ``device`` (default: its parameters').
    Raises :class:`InvalidParameterError` when the model's logits are not the last
    hidden state times the unembedding (plus bias) to :data:`LOGIT_CHECK`.
    """
    import torch

    seqs = _sequences(sequences)
    w, b = _unembedding(model, unembedding)
    if device is None:
        params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    was_training = bool(getattr(model, "training", False))
    if isinstance(model, torch.nn.Module):
        model.eval()
    hidden: list[np.ndarray] = []
    nxt: list[np.ndarray] = []
    order: list[int] = []
    worst = 0.0
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        by_len.setdefault(s.size, []).append(i)
    try:
        with torch.no_grad():
            for length in sorted(by_len):
                idx = by_len[length]
                for start in range(0, len(idx), batch_size):
                    part = idx[start : start + batch_size]
                    ids = torch.as_tensor(np.stack([seqs[i] for i in part]), device=device)
                    logits, h = _forward(model, ids)
                    h64 = h[:, :-1].detach().to("cpu", torch.float64).numpy()
                    z = logits[:, :-1].detach().to("cpu", torch.float64).numpy()
                    mine = h64 @ w.T + (0.0 if b is None else b)
                    scale = max(1.0, float(np.max(np.abs(z))))
                    worst = max(worst, float(np.max(np.abs(mine - z))) / scale)
                    hidden.append(h64.reshape(-1, h64.shape[-1]))
                    nxt.append(ids[:, 1:].cpu().numpy().reshape(-1))
                    order.extend(part)
    finally:
        if isinstance(model, torch.nn.Module) and was_training:
            model.train()
    if hidden[0].shape[1] != w.shape[1]:
        raise InputShapeError(f"the last hidden state has width {hidden[0].shape[1]} but the "
                              f"unembedding {w.shape[1]}")
    if worst > LOGIT_CHECK:
        raise InvalidParameterError(
            f"the model's logits differ from last_hidden @ Wᵀ + b by {worst:.2g} of their scale: "
            "the hidden state returned is not the one the unembedding reads (a final norm, a "
            "logit scale or soft-cap?); return that state, or pass unembedding=")
    # contexts in the caller's sequence order
    starts = np.cumsum([0] + [seqs[i].size - 1 for i in order])
    perm = np.concatenate([np.arange(starts[j], starts[j + 1])
                           for j in np.argsort(order, kind="stable")])
    return NextTokenStates(hidden=np.concatenate(hidden)[perm], weight=w, bias=b,
                           next_tokens=np.concatenate(nxt)[perm], logit_error=worst,
                           name=name)


def _check_pair(a: NextTokenStates, b: NextTokenStates) -> None:
    if a.n_contexts != b.n_contexts or not np.array_equal(a.next_tokens, b.next_tokens):
        raise InputShapeError("the two models were not run on the same text (contexts differ)")
    if a.vocab_size != b.vocab_size:
        raise InputShapeError(f"vocabularies differ ({a.vocab_size} and {b.vocab_size} tokens)")


def next_token_kl(a: NextTokenStates, b: NextTokenStates) -> KLResult:
    """Mean KL over contexts between the two next-token distributions, over the full
    vocabulary: float64 logits and a float64 log-softmax, blocked over contexts."""
    _check_pair(a, b)
    n = a.n_contexts
    rows = max(1, _BLOCK // max(1, a.vocab_size))
    fwd, rev = np.empty(n), np.empty(n)
    for s in range(0, n, rows):
        blk = slice(s, min(n, s + rows))
        la, lb = log_softmax(a.logits(blk), axis=1), log_softmax(b.logits(blk), axis=1)
        fwd[blk] = np.maximum(np.sum(np.exp(la) * (la - lb), axis=1), 0.0)
        rev[blk] = np.maximum(np.sum(np.exp(lb) * (lb - la), axis=1), 0.0)
    return KLResult(forward=float(fwd.mean()), reverse=float(rev.mean()),
                    per_input_forward=fwd, per_input_reverse=rev)


def frequent_tokens(next_tokens: np.ndarray, k: int, vocab_size: int) -> np.ndarray:
    """The ``k`` most frequent next tokens (ties: smaller id first), capped by the vocabulary."""
    counts = np.bincount(next_tokens, minlength=vocab_size)
    return np.argsort(-counts, kind="stable")[: min(k, vocab_size)]


def next_token_model(states: NextTokenStates, labels: Sequence[int] | np.ndarray
                     ) -> SoftmaxModel:
    """The softmax-family model over ``labels``: ``F`` = hidden states, ``G`` = their
    unembeddings, with their biases (the distribution renormalised over the labels)."""
    lab = np.asarray(labels, dtype=np.int64)
    bias = None if states.bias is None else states.bias[lab]
    return SoftmaxModel(states.hidden, states.weight[lab], bias=bias, name=states.name)


@dataclass(frozen=True)
class NextTokenComparison:
    """KL over the full vocabulary, m_CCA of the hidden states, and per label-set size K:
    d_LLV, its lower bound, d_{f,g} as an interval and the bound check (``curve``)."""

    kl: KLResult
    m_cca_f: float | None
    curve: list[dict[str, Any]]
    n_contexts: int
    vocab_size: int
    logit_error: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"kl": self.kl.forward, "kl_reverse": self.kl.reverse, "m_cca_f": self.m_cca_f,
                "n_contexts": self.n_contexts, "vocab_size": self.vocab_size,
                "logit_error": list(self.logit_error), "curve": self.curve}


def _curve_point(a: NextTokenStates, b: NextTokenStates, labels: np.ndarray,
                 counts: np.ndarray, **kw: Any) -> dict[str, Any]:
    from repscope.identifiability.dissimilarity import bound_check, representation_dissimilarity
    from repscope.identifiability.llv import llv_distance

    row: dict[str, Any] = {"k": int(labels.size),
                           "unseen_labels": int(np.sum(counts[labels] == 0)),
                           "label_share": float(counts[labels].sum() / counts.sum())}
    try:
        ma, mb = next_token_model(a, labels), next_token_model(b, labels)
        llv = llv_distance(ma, mb, n_candidates=kw["n_candidates"], seed=kw["seed"],
                           device=kw["device"])
        row.update({"d_llv": llv.distance, "d_llv_lower": llv.lower, "t1": llv.t1,
                    "t2": llv.t2, "pivot_token": int(labels[llv.pivot]),
                    "left_out_token": int(labels[llv.left_out])})
        dis = representation_dissimilarity(ma, mb, llv, budget=kw["budget"])
        row.update({"d_fg_lower": dis.lower, "d_fg_upper": dis.upper, "d_fg_exact": dis.exact,
                    "d_fg_search": dis.search.get("description", ""),
                    "bound_check": bound_check(dis, llv)["sentence"]})
    except RepscopeError as e:
        row["error"] = f"{type(e).__name__}: {e}"
    return row


def compare_next_token(
    model_a: Any, model_b: Any, sequences: Any = None, *,
    label_counts: Sequence[int] = DEFAULT_LABEL_COUNTS, n_candidates: int = 200,
    seed: int = 0, budget: int = 20_000, batch_size: int = 16, device: Any = None,
) -> NextTokenComparison:
    """Compare two causal LMs (or their :class:`NextTokenStates`) on the same text.

    KL is exact over the full vocabulary; d_LLV (exact label side, searched input
    side) and d_{f,g} (an interval) are computed over the K most frequent next
    tokens for each K in ``label_counts`` (capped by the vocabulary).  A K at which
    a quantity is undefined (e.g. ``K < M + 1`` labels for hidden size M) gets an
    ``"error"`` entry instead.  ``device`` runs the models and d_LLV's label side.
    """
    states = []
    for i, m in enumerate((model_a, model_b)):
        if isinstance(m, NextTokenStates):
            states.append(m)
        else:
            if sequences is None:
                raise InvalidParameterError("sequences are needed to run the models")
            states.append(next_token_states(m, sequences, batch_size=batch_size, device=device,
                                            name="AB"[i]))
    a, b = states
    _check_pair(a, b)
    kl = next_token_kl(a, b)
    from repscope.measures.registry import measure

    try:
        mc: float | None = measure("mean_cca")(a.hidden, b.hidden)
    except RepscopeError:
        mc = None
    counts = np.bincount(a.next_tokens, minlength=a.vocab_size)
    sizes = sorted({min(int(k), a.vocab_size) for k in label_counts})
    curve = [_curve_point(a, b, frequent_tokens(a.next_tokens, k, a.vocab_size), counts,
                          n_candidates=n_candidates, seed=seed, budget=budget, device=device)
             for k in sizes]
    return NextTokenComparison(kl=kl, m_cca_f=mc, curve=curve, n_contexts=a.n_contexts,
                               vocab_size=a.vocab_size,
                               logit_error=(a.logit_error, b.logit_error))
