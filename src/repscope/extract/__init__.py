"""Extract activations from models: any ``torch.nn.Module`` by module name, or the
hidden states of Hugging Face transformers with attention-mask-aware pooling.

Quick start::

    from repscope.extract import list_layers, extract_torch, extract_hf
    list_layers(cnn)                                   # module names usable as layers
    acts = extract_torch(cnn, X, ["conv1", "fc1"], spatial="mean")
    acts["conv1"]                                      # (n, c) float32 NumPy array

    from repscope.extract import load_model
    model, tok = load_model("all-MiniLM-L6-v2")        # or a model id in the HF cache
    acts = extract_hf(model, tok, sentences, pooling="mean")
    acts["hidden.6"]                                   # (n_sentences, 384)

``load_model`` takes a local model folder, a built-in name
(:mod:`repscope.extract.pretrained`) or a model id in the local Hugging Face
cache (:mod:`repscope.extract.hf_cache`); it never downloads.

Pass ``store="acts.zarr"`` (or an :class:`~repscope.storage.activation_store.ActivationStore`) to
stream activations to disk chunk by chunk with provenance; the result then
holds lazily read arrays.
"""

from __future__ import annotations

from repscope.extract._common import Activations, ExtractionError, UnknownLayerError
from repscope.extract.datasets import builtin_sentences
from repscope.extract.hf import extract_hf, hf_layer_names, load_hf
from repscope.extract.hf_cache import cached_models
from repscope.extract.pooling import (
    SPATIAL_POOLINGS,
    TOKEN_POOLINGS,
    pool_spatial,
    pool_tokens,
    tokens_per_row,
)
from repscope.extract.provenance import DatasetHasher, dataset_hash, texts_hash, weights_hash
from repscope.extract.resolve import available_models, load_model, resolve_model
from repscope.extract.torch_hooks import extract_torch, list_layers, resolve_layers

__all__ = [
    "Activations",
    "DatasetHasher",
    "ExtractionError",
    "SPATIAL_POOLINGS",
    "TOKEN_POOLINGS",
    "UnknownLayerError",
    "available_models",
    "builtin_sentences",
    "cached_models",
    "dataset_hash",
    "extract_hf",
    "extract_torch",
    "hf_layer_names",
    "list_layers",
    "load_hf",
    "load_model",
    "pool_spatial",
    "pool_tokens",
    "resolve_layers",
    "resolve_model",
    "texts_hash",
    "tokens_per_row",
    "weights_hash",
]
