"""Hidden states of Hugging Face ``transformers`` models, pooled over real tokens.

Models are loaded from local folders only (``local_files_only=True`` with
``HF_HUB_OFFLINE=1`` during loading; :mod:`repscope.extract.hf_load`): repscope
never downloads weights.  Built-in names and model ids in the Hugging Face cache
are found by :mod:`repscope.extract.resolve`.

Layers are the model's ``hidden_states``: ``"hidden.0"`` is the embedding
output and ``"hidden.i"`` the output of block ``i`` (``i = 1..L``); integers
(``0..L``, negative from the end) are accepted too.

Padding never leaks into the result.  Texts are padded on the right for the
forward pass (the tokenizer's own ``padding_side`` is restored afterwards), so
with absolute position embeddings real tokens keep their positions, and every
pooling uses the attention mask (see :mod:`repscope.extract.pooling`): a
sentence pools to the same vector alone or in a batch with much longer ones.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError, RepscopeWarning
from repscope.core.optional import require
from repscope.extract._common import (
    Activations,
    ExtractionError,
    Sink,
    UnknownLayerError,
    as_store,
    check_float_dtype,
    close_matches_hint,
    eval_mode,
    on_device,
    progress_bar,
    resolve_device,
    rows_to_numpy,
)
from repscope.extract.hf_load import load_hf, offline_env
from repscope.extract.pooling import TOKEN_POOLINGS, pool_tokens, tokens_per_row
from repscope.extract.provenance import texts_hash, weights_hash

__all__ = ["extract_hf", "hf_layer_names", "load_hf", "offline_env"]

#: tokenizers report this (or larger) when they have no length limit
_NO_LIMIT = 10**6
#: texts sorted by length together (bounds the rows held in memory before writing)
_SORT_WINDOW = 2048


def _n_blocks(model: Any) -> int:
    config = getattr(model, "config", None)
    n = getattr(config, "num_hidden_layers", None)
    if not isinstance(n, int) or n < 0:
        raise RepscopeError(
            f"cannot tell how many layers {type(model).__name__} has (config.num_hidden_layers "
            "is missing); is this a Hugging Face transformers model?"
        )
    return n


def hf_layer_names(model: Any) -> list[str]:
    """``["hidden.0", ..., "hidden.L"]``: embeddings, then each of the ``L`` blocks."""
    return [f"hidden.{i}" for i in range(_n_blocks(model) + 1)]


def _resolve_hf_layers(model: Any, layers: Any) -> list[tuple[str, int]]:
    names = hf_layer_names(model)
    n = len(names)
    if layers is None:
        return [(nm, i) for i, nm in enumerate(names)]
    items = [layers] if isinstance(layers, (str, int)) else list(layers)
    if not items:
        raise RepscopeError("no layers requested; see repscope.extract.hf_layer_names(model)")
    out: list[tuple[str, int]] = []
    for item in items:
        if isinstance(item, bool):
            raise RepscopeError(f"invalid layer {item!r}")
        if isinstance(item, (int, np.integer)):
            i = int(item)
            if not -n <= i < n:
                raise UnknownLayerError(
                    f"layer index {i} out of range: the model has hidden states 0..{n - 1} "
                    f"(0 = embeddings)"
                )
            i %= n
        elif isinstance(item, str) and item in names:
            i = names.index(item)
        else:
            raise UnknownLayerError(
                f"{type(model).__name__} has no hidden state {item!r}"
                f"{close_matches_hint(str(item), names)} Available: {', '.join(names)} "
                "(or integers; for arbitrary modules use extract_torch with list_layers)"
            )
        if any(j == i for _, j in out):
            raise RepscopeError(f"layer {names[i]!r} is requested twice")
        out.append((names[i], i))
    return out


def _default_max_length(model: Any, tokenizer: Any) -> int | None:
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < _NO_LIMIT:
        return tok_max
    pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(pos) if isinstance(pos, int) and pos > 0 else None


def _model_id(model: Any) -> str:
    mid = getattr(model, "repscope_model_id", None)
    if isinstance(mid, str) and mid:
        return mid
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    if name:
        return Path(str(name)).name or type(model).__name__
    return type(model).__name__


def _forward_keys(model: Any) -> set[str] | None:
    """Argument names ``model.forward`` accepts (None: it takes ``**kwargs``)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


@contextlib.contextmanager
def _right_padding(tokenizer: Any) -> Iterator[None]:
    """Pad on the right and make sure a pad token exists; restore the tokenizer after."""
    old_side = getattr(tokenizer, "padding_side", "right")
    added_pad = False
    if getattr(tokenizer, "pad_token", None) is None:
        eos = getattr(tokenizer, "eos_token", None)
        if eos is None:
            raise RepscopeError(
                "the tokenizer has neither a pad token nor an end-of-sequence token to pad "
                "with; set tokenizer.pad_token first"
            )
        tokenizer.pad_token = eos
        added_pad = True
    tokenizer.padding_side = "right"
    try:
        yield
    finally:
        tokenizer.padding_side = old_side
        if added_pad:
            tokenizer.pad_token = None


def _length_order(
    tokenizer: Any, texts: list[str], ml: int | None, batch_size: int, enabled: bool
) -> np.ndarray:
    """Indices of ``texts`` sorted by token count (stable), or the identity."""
    if not enabled or len(texts) <= batch_size:
        return np.arange(len(texts))
    ids = tokenizer(texts, truncation=ml is not None, max_length=ml)["input_ids"]
    return np.argsort(np.array([len(x) for x in ids]), kind="stable")


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        raise RepscopeError("texts must be a list of strings, not a single string")
    try:
        items = list(texts)
    except TypeError as exc:
        raise RepscopeError(f"texts must be a list of strings, got {type(texts).__name__}") from exc
    if not items:
        raise RepscopeError("texts is empty")
    bad = [i for i, s in enumerate(items) if not isinstance(s, str)]
    if bad:
        raise RepscopeError(f"texts must all be strings; items {bad[:5]} are not")
    return items


def extract_hf(
    model: Any,
    tokenizer: Any = None,
    texts: Sequence[str] | None = None,
    *,
    layers: Any = None,
    pooling: str = "mean",
    exclude_special: bool = False,
    batch_size: int = 32,
    max_length: int | None = None,
    sort_by_length: bool = True,
    device: Any = None,
    dtype: Any = np.float32,
    store: Any = None,
    model_id: str | None = None,
    dataset_id: str | None = None,
    revision: str | None = None,
    overwrite: bool = False,
    chunk_rows: int | None = None,
    progress: bool | None = None,
) -> Activations:
    """Hidden states of every (or selected) layer of a transformers model, pooled per text.

    Parameters
    ----------
    model : transformers model, name or path
        A loaded model (e.g. from :func:`~repscope.extract.load_model`), or what
        ``load_model`` takes: a local model folder, a built-in name or a model id in
        the Hugging Face cache (then ``tokenizer`` may be None).
    tokenizer : the matching tokenizer.
    texts : list of str
        The dataset: one input per string.
    layers : None, int, str or sequence
        ``None``: all hidden states ``"hidden.0"`` (embeddings) .. ``"hidden.L"``.
    pooling : {"mean", "last", "first", "cls", "none"}
        ``mean`` over real tokens; the ``last`` real token; the ``first`` real
        token (``cls`` is an alias); ``none``: one row per real token, with
        ``Activations.token_index`` giving ``(text, position)`` per row.
        Padding is excluded in every case; see :mod:`repscope.extract.pooling`.
    exclude_special : bool
        Also exclude special tokens (``[CLS]``, ``[SEP]``, ``<s>``...) from
        pooling.  Default False, which matches sentence-transformers' mean
        pooling.  Not allowed with ``cls``.
    batch_size : int
        Texts per forward pass.
    max_length : int, optional
        Truncation length in tokens; default the tokenizer's
        ``model_max_length`` (else ``config.max_position_embeddings``).  A
        :class:`~repscope.RepscopeWarning` reports texts that reach it.
    sort_by_length : bool
        Batch texts of similar token length together (within windows of
        2048 texts, or of 4 batches for ``none``; the rows of one window are
        held in memory before they are written) to avoid computing on padding.
        Results come back in input order and do not depend on this choice,
        since pooling ignores padding.
    device, dtype, store, model_id, dataset_id, overwrite, chunk_rows, progress
        As in :func:`~repscope.extract.extract_torch`; store keys are
        ``"<model_id>/hidden.<i>/<pooling>"`` (``-nospecial`` appended to the
        pooling with ``exclude_special``).  ``model_id`` defaults to
        ``model.repscope_model_id`` (set by :func:`repscope.extract.pretrained.load`) or
        the model folder's name.
    revision : str, optional
        Model revision recorded in the provenance (default: set by
        :func:`repscope.extract.pretrained.load`, or the config's commit hash).

    Returns
    -------
    Activations
        Layer name -> ``(n_texts, d)`` (or ``(n_tokens, d)`` for ``none``).
    """
    torch = require("torch", purpose="extract_hf")
    if isinstance(model, (str, os.PathLike)):
        from repscope.extract.resolve import load_model

        loaded_model, loaded_tok = load_model(model)
        model = loaded_model
        tokenizer = tokenizer if tokenizer is not None else loaded_tok
    if not isinstance(model, torch.nn.Module):
        raise RepscopeError(f"model must be a transformers model or a path, got {type(model)}")
    if tokenizer is None or not callable(tokenizer):
        raise RepscopeError(
            "a tokenizer is required (from load_hf or repscope.extract.pretrained.load)"
        )
    items = _check_texts(texts if texts is not None else [])
    if pooling not in TOKEN_POOLINGS:
        raise RepscopeError(f"pooling must be one of {TOKEN_POOLINGS}, got {pooling!r}")
    if pooling == "cls" and exclude_special:
        raise RepscopeError(
            "pooling='cls' selects the special [CLS] token; exclude_special=True "
            "contradicts it (use 'first' for the first non-special token)"
        )
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise RepscopeError(f"batch_size must be a positive integer, got {batch_size!r}")
    out_dtype = check_float_dtype(dtype)
    selected = _resolve_hf_layers(model, layers)
    dev = resolve_device(device, model)
    ml = max_length if max_length is not None else _default_max_length(model, tokenizer)
    if ml is not None and (not isinstance(ml, int) or ml < 1):
        raise RepscopeError(f"max_length must be a positive integer, got {ml!r}")
    method = "first" if pooling == "cls" else pooling
    label = method + ("-nospecial" if exclude_special else "")
    st = as_store(store)

    options = {
        "extractor": "hf",
        "pooling": method,
        "exclude_special": bool(exclude_special),
        "max_length": ml,
        "padding_side": "right",
    }
    mid = model_id or _model_id(model)
    rev = revision or getattr(model, "repscope_revision", None)
    rev = rev or getattr(getattr(model, "config", None), "_commit_hash", None)
    provenance: dict[str, Any] = {
        "model": mid,
        "model_revision": rev,
        "dataset": dataset_id,
        "dataset_sha256": texts_hash(items),
        "pooling": label,
        "options": options,
    }
    if st is not None:  # hashing the weights costs a pass over them: only for the store
        provenance["weights_sha256"] = weights_hash(model)
    names = [nm for nm, _ in selected]
    index_of = dict(selected)
    sink = Sink(
        names,
        store=st,
        model_id=mid,
        pooling=label,
        dtype=out_dtype,
        provenance=provenance,
        overwrite=overwrite,
        chunk_rows=chunk_rows,
        with_index=method == "none",
        dataset_known=True,
    )
    pending = sink.pending
    if not pending:
        return sink.finish()

    accepted = _forward_keys(model)
    n_hidden = len(hf_layer_names(model))
    total = -(-len(items) // batch_size)
    # texts sorted together; per-token rows are many, so their window is a few batches
    window = 4 * batch_size if method == "none" else max(batch_size, _SORT_WINDOW)
    n_at_limit = 0

    def forward(chunk: list[str]) -> tuple[Any, Any]:
        """Hidden states of one batch and the mask of the tokens to keep."""
        nonlocal n_at_limit
        enc = tokenizer(
            chunk,
            padding=True,
            truncation=ml is not None,
            max_length=ml,
            return_tensors="pt",
            return_special_tokens_mask=exclude_special,
        )
        special = enc.pop("special_tokens_mask", None)
        if "attention_mask" not in enc:
            raise ExtractionError("the tokenizer returned no attention_mask")
        mask = enc["attention_mask"]
        if ml is not None:
            n_at_limit += int((mask.sum(dim=1) >= ml).sum())
        keep = mask if special is None else mask * (1 - special)
        inputs = {k: v.to(dev) for k, v in enc.items() if accepted is None or k in accepted}
        out = model(**inputs, output_hidden_states=True, return_dict=True)
        hidden = getattr(out, "hidden_states", None)
        if hidden is None:
            raise ExtractionError(
                f"{type(model).__name__} returned no hidden_states; extract_hf needs an "
                "encoder or decoder model (use extract_torch for other modules)"
            )
        if len(hidden) != n_hidden:
            raise ExtractionError(
                f"the model returned {len(hidden)} hidden states, expected {n_hidden} "
                "(num_hidden_layers + 1)"
            )
        return hidden, keep.to(dev)

    try:
        with (
            eval_mode(model),
            on_device(model, dev),
            torch.no_grad(),
            _right_padding(tokenizer),
            progress_bar(total, f"extract {mid}", progress) as advance,
        ):
            for w0 in range(0, len(items), window):
                texts_w = items[w0 : w0 + window]
                order = _length_order(tokenizer, texts_w, ml, batch_size, sort_by_length)
                parts: dict[str, list[np.ndarray]] = {name: [] for name in pending}
                index_parts: list[np.ndarray] = []
                for b0 in range(0, len(order), batch_size):
                    sel = order[b0 : b0 + batch_size]
                    hidden, keep = forward([texts_w[i] for i in sel])
                    for j, name in enumerate(pending):
                        h = hidden[index_of[name]]
                        if method == "none":
                            rows, idx = tokens_per_row(h, keep)
                            if j == 0:
                                idx = idx.cpu().numpy()
                                idx[:, 0] = sel[idx[:, 0]] + w0  # global text number
                                index_parts.append(idx)
                        else:
                            rows = pool_tokens(h, keep, method)
                        parts[name].append(rows_to_numpy(rows, out_dtype))
                    advance(1)
                # back to input order: by text (pooled), or by (text, position) (per token)
                if method == "none":
                    index_w = np.concatenate(index_parts)
                    perm = np.lexsort((index_w[:, 1], index_w[:, 0]))
                    index_w = index_w[perm]
                    sink.append_index(index_w)
                else:
                    perm = np.argsort(order, kind="stable")
                    index_w = None
                for name in pending:
                    sink.append(name, np.concatenate(parts[name])[perm], index_w)
                del parts, index_parts
    except BaseException:
        sink.abort()
        raise
    if n_at_limit:
        warnings.warn(
            f"{n_at_limit} of {len(items)} texts reached max_length={ml} tokens and were "
            "probably truncated; pass a larger max_length if the model allows it",
            RepscopeWarning,
            stacklevel=2,
        )
    return sink.finish()
