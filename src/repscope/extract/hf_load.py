"""Loading Hugging Face models and tokenizers from local folders, offline.

``load_hf(folder)`` reads a folder holding ``config.json``, the weights and the
tokenizer files with ``local_files_only=True`` while ``HF_HUB_OFFLINE=1`` and
``TRANSFORMERS_OFFLINE=1`` are set (:func:`offline_env`), never with the
folder's own Python code (``trust_remote_code=False``).  Names (built-in models,
model ids in the Hugging Face cache) are resolved to folders by
:mod:`repscope.extract.resolve`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repscope.core.errors import RepscopeError
from repscope.core.optional import require
from repscope.extract._common import resolve_device

__all__ = ["load_hf", "offline_env"]


@contextlib.contextmanager
def offline_env() -> Iterator[None]:
    """Set ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` for the duration."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' weight-loading progress bar (restored afterwards)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def load_hf(path: str | os.PathLike[str], *, device: Any = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local Hugging Face model folder, offline.

    Parameters
    ----------
    path : folder with ``config.json``, the weights and the tokenizer files.
    device : optional torch device to move the model to.

    The model is returned in eval mode.
    """
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise RepscopeError(
            f"{folder} is not a local Hugging Face model folder (no config.json); repscope "
            "loads models from local folders only and never downloads (built-in names and "
            "model ids in the Hugging Face cache: repscope.extract.load_model(name))"
        )
    transformers = require("transformers", purpose="loading Hugging Face models")
    AutoModel, AutoTokenizer = transformers.AutoModel, transformers.AutoTokenizer
    with offline_env(), _quiet_transformers():
        # never the folder's own Python code; weights are read without unpickling objects
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                  trust_remote_code=False)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True,
                                          trust_remote_code=False)
    model.eval()
    if device is not None:
        model.to(resolve_device(device, model))
    return model, tokenizer
