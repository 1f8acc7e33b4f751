"""A tiny, randomly initialised BERT saved like a Hugging Face model, and a fake hub cache.

``fake_hub_cache(root, "org/name")`` writes the layout ``huggingface_hub`` uses,
``root/models--org--name/snapshots/<commit>/`` plus ``refs/main``, so code that
reads the standard cache (``HF_HUB_CACHE=root``) finds the model offline.
"""

from __future__ import annotations

from pathlib import Path

WORDS = ("[PAD] [UNK] [CLS] [SEP] the a cat dog sat on mat and ran far away big small red "
         "blue house tree river man boat sea is of to in").split()
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def tiny_bert(folder: Path, *, layers: int = 2, width: int = 16, seed: int = 0) -> Path:
    """Save a random BERT (``layers`` blocks of ``width``) and a word-level tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=width, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * width,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]",
                            model_max_length=128).save_pretrained(folder)
    return folder


def fake_hub_cache(root: Path, repo_id: str, *, commit: str = COMMIT, ref: bool = True,
                   **kwargs: int) -> Path:
    """Put a tiny BERT into ``root`` as the hub cache entry of ``repo_id``; returns its folder."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = tiny_bert(repo / "snapshots" / commit, **kwargs)
    if ref:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
    return snapshot
