"""Tests of Hugging Face hidden-state extraction and attention-mask-aware pooling.

The models are tiny, randomly initialised BERT and GPT-2 networks with a
word-level tokenizer, written to a temporary folder and loaded back offline,
so these tests need no downloaded weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from repscope.core.errors import RepscopeError, RepscopeWarning  # noqa: E402
from repscope.extract import (  # noqa: E402
    ExtractionError,
    UnknownLayerError,
    builtin_sentences,
    extract_hf,
    hf_layer_names,
    load_hf,
    pool_tokens,
    texts_hash,
    tokens_per_row,
    weights_hash,
)
from repscope.extract.hf import offline_env  # noqa: E402
from repscope.storage.activation_store import ActivationStore  # noqa: E402

WORDS = (
    "[PAD] [UNK] [CLS] [SEP] the a cat dog sat on mat and ran far away quickly big small red "
    "blue over under house tree river old man boat sea"
).split()
SHORT = "the cat sat"
LONG = (
    "a big red dog ran far away over the old house and under the tree and on the mat quickly "
    "and the small blue cat sat on the boat over the sea"
)


def _tokenizer(*, template: bool, pad: bool, side: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(WORDS)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    kwargs: dict = {"unk_token": "[UNK]", "model_max_length": 64}
    if template:
        tk.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
        kwargs.update(cls_token="[CLS]", sep_token="[SEP]")
    else:
        kwargs.update(eos_token="[SEP]")
    if pad:
        kwargs["pad_token"] = "[PAD]"
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, **kwargs)
    tok.padding_side = side
    return tok


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=0.3,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    _tokenizer(template=True, pad=True, side="right").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert(bert_dir: Path):
    return load_hf(bert_dir)


@pytest.fixture(scope="module")
def gpt2():
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=len(WORDS), n_embd=16, n_layer=2, n_head=2, n_positions=64)
    model = GPT2Model(cfg).eval()
    return model, _tokenizer(template=False, pad=False, side="left")


# ----------------------------------------------------------- pooling functions
def _masks() -> torch.Tensor:
    return torch.tensor(
        [
            [1, 1, 1, 1, 1, 1, 1],  # no padding
            [1, 1, 1, 0, 0, 0, 0],  # right padding
            [0, 0, 0, 0, 1, 1, 1],  # left padding
            [0, 1, 1, 0, 1, 0, 0],  # holes (e.g. special tokens excluded)
            [0, 0, 0, 1, 0, 0, 0],  # a single real token
        ]
    )


def test_pool_tokens_against_loops() -> None:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(5, 7, 4, generator=g)
    mask = _masks()
    H, M = hidden.double().numpy(), mask.numpy().astype(bool)
    mean = pool_tokens(hidden, mask, "mean").numpy()
    last = pool_tokens(hidden, mask, "last").numpy()
    first = pool_tokens(hidden, mask, "first").numpy()
    cls = pool_tokens(hidden, mask, "cls").numpy()
    rows, index = tokens_per_row(hidden, mask)
    r = 0
    for i in range(5):
        real = [j for j in range(7) if M[i, j]]
        np.testing.assert_allclose(mean[i], sum(H[i, j] for j in real) / len(real), atol=1e-12)
        np.testing.assert_allclose(last[i], H[i, real[-1]], atol=1e-7)
        np.testing.assert_allclose(first[i], H[i, real[0]], atol=1e-7)
        np.testing.assert_array_equal(cls[i], first[i])
        for p, j in enumerate(real):
            assert index[r].tolist() == [i, p]
            np.testing.assert_array_equal(rows[r].numpy(), hidden[i, j].numpy())
            r += 1
    assert r == rows.shape[0] == int(M.sum())
    assert mean.dtype == np.float64


def test_pool_tokens_rejects_empty_rows_and_bad_shapes() -> None:
    hidden = torch.randn(2, 3, 4)
    with pytest.raises(ExtractionError, match=r"rows \[1\] have no real tokens"):
        pool_tokens(hidden, torch.tensor([[1, 1, 0], [0, 0, 0]]), "mean")
    with pytest.raises(ExtractionError, match="does not match"):
        pool_tokens(hidden, torch.ones(2, 4), "mean")
    with pytest.raises(ExtractionError, match="unknown token pooling"):
        pool_tokens(hidden, torch.ones(2, 3), "max")
    with pytest.raises(ExtractionError, match="batch, tokens, d"):
        tokens_per_row(torch.randn(2, 3), torch.ones(2, 3))


# ----------------------------------------------------------- padding invariance
@pytest.mark.parametrize("pooling", ["mean", "last", "first"])
def test_pooling_ignores_padding_bert(bert, pooling: str) -> None:
    model, tok = bert
    alone = extract_hf(model, tok, [SHORT], pooling=pooling, progress=False)
    batch = extract_hf(model, tok, [SHORT, LONG], pooling=pooling, progress=False)
    assert list(alone) == hf_layer_names(model) == ["hidden.0", "hidden.1", "hidden.2", "hidden.3"]
    for layer in alone:
        assert batch[layer].shape == (2, 16)
        np.testing.assert_allclose(batch[layer][0], alone[layer][0], atol=1e-5, rtol=0)


def test_padding_would_matter_without_the_mask(bert) -> None:
    """Control: a padding-blind mean differs, so the test above can fail."""
    model, tok = bert
    enc = tok([SHORT, LONG], padding=True, return_tensors="pt")
    with torch.no_grad():
        hs = model(**enc, output_hidden_states=True).hidden_states
    naive = hs[-1][0].mean(dim=0).numpy()
    ours = extract_hf(model, tok, [SHORT], layers=[-1], progress=False)["hidden.3"][0]
    assert np.abs(naive - ours).max() > 1e-3


def test_per_token_rows_ignore_padding(bert) -> None:
    model, tok = bert
    alone = extract_hf(model, tok, [SHORT], pooling="none", progress=False)
    batch = extract_hf(model, tok, [LONG, SHORT, "a dog"], pooling="none", batch_size=2)
    n_short = len(tok(SHORT)["input_ids"])
    n_long = len(tok(LONG)["input_ids"])
    assert alone.token_index.tolist() == [[0, p] for p in range(n_short)]
    idx = batch.token_index
    assert idx.dtype == np.int64 and idx.shape == (n_long + n_short + 4, 2)
    assert idx[:, 0].tolist() == [0] * n_long + [1] * n_short + [2] * 4  # global sentence ids
    assert idx[n_long : n_long + n_short, 1].tolist() == list(range(n_short))
    for layer in alone:
        assert batch[layer].shape == (idx.shape[0], 16)
        np.testing.assert_allclose(batch[layer][idx[:, 0] == 1], alone[layer], atol=1e-5, rtol=0)


def test_left_padded_causal_model_without_pad_token(gpt2) -> None:
    model, tok = gpt2
    assert tok.padding_side == "left" and tok.pad_token is None
    for pooling in ("mean", "last", "first"):
        alone = extract_hf(model, tok, [SHORT], pooling=pooling)
        batch = extract_hf(model, tok, [LONG, SHORT], pooling=pooling)
        for layer in alone:
            np.testing.assert_allclose(batch[layer][1], alone[layer][0], atol=1e-5, rtol=0)
    assert tok.padding_side == "left" and tok.pad_token is None  # restored


def test_pooled_values_match_direct_forward(bert) -> None:
    """mean/last/first equal hand-picked hidden states of an unpadded forward pass."""
    model, tok = bert
    texts = [SHORT, LONG, "a dog"]
    got = {p: extract_hf(model, tok, texts, pooling=p, batch_size=2) for p in ("mean", "last")}
    got["cls"] = extract_hf(model, tok, texts, pooling="cls")
    got["nospecial"] = extract_hf(model, tok, texts, pooling="mean", exclude_special=True)
    for i, text in enumerate(texts):
        enc = tok([text], return_tensors="pt")
        with torch.no_grad():
            hs = model(**enc, output_hidden_states=True).hidden_states
        for li, layer in enumerate(hf_layer_names(model)):
            h = hs[li][0].double().numpy()
            np.testing.assert_allclose(got["mean"][layer][i], h.mean(0), atol=1e-5)
            np.testing.assert_allclose(got["last"][layer][i], h[-1], atol=1e-5)
            np.testing.assert_allclose(got["cls"][layer][i], h[0], atol=1e-5)
            np.testing.assert_allclose(got["nospecial"][layer][i], h[1:-1].mean(0), atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "none"])
def test_length_sorting_and_windows_keep_input_order(bert, pooling, monkeypatch) -> None:
    import repscope.extract.hf as hf_mod

    model, tok = bert
    words = LONG.split()
    rng = np.random.default_rng(3)
    texts = [" ".join(words[: int(k)]) for k in rng.integers(1, len(words), 11)]
    plain = extract_hf(model, tok, texts, pooling=pooling, batch_size=3, sort_by_length=False)
    monkeypatch.setattr(hf_mod, "_SORT_WINDOW", 4)  # windows of 4 texts: 3 windows
    for sort in (True, False):
        got = extract_hf(model, tok, texts, pooling=pooling, batch_size=2, sort_by_length=sort)
        for layer in plain:
            np.testing.assert_allclose(got[layer], plain[layer], atol=1e-5, rtol=0)
        if pooling == "none":
            np.testing.assert_array_equal(got.token_index, plain.token_index)
    if pooling == "none":  # rows grouped by text, positions 0..len-1 within each text
        idx = plain.token_index
        assert (np.diff(idx[:, 0]) >= 0).all()
        for i, text in enumerate(texts):
            assert idx[idx[:, 0] == i, 1].tolist() == list(range(len(text.split()) + 2))


def test_model_in_train_mode_gives_deterministic_eval_output(bert) -> None:
    model, tok = bert
    model.train()  # dropout 0.3 would make outputs random
    try:
        a = extract_hf(model, tok, [SHORT, LONG])
        b = extract_hf(model, tok, [SHORT, LONG])
        assert model.training
    finally:
        model.eval()
    for layer in a:
        np.testing.assert_array_equal(a[layer], b[layer])


# ----------------------------------------------------------- layers and arguments
def test_layer_selection(bert) -> None:
    model, tok = bert
    acts = extract_hf(model, tok, [SHORT], layers=[0, -1, "hidden.2"])
    assert list(acts) == ["hidden.0", "hidden.3", "hidden.2"]
    assert list(extract_hf(model, tok, [SHORT], layers=1)) == ["hidden.1"]
    with pytest.raises(UnknownLayerError, match="out of range"):
        extract_hf(model, tok, [SHORT], layers=[4])
    with pytest.raises(UnknownLayerError, match="'hidden.2'"):
        extract_hf(model, tok, [SHORT], layers=["hiden.2"])
    with pytest.raises(RepscopeError, match="twice"):
        extract_hf(model, tok, [SHORT], layers=[3, -1])


def test_bad_arguments(bert) -> None:
    model, tok = bert
    with pytest.raises(RepscopeError, match="not a single string"):
        extract_hf(model, tok, SHORT)
    with pytest.raises(RepscopeError, match="empty"):
        extract_hf(model, tok, [])
    with pytest.raises(RepscopeError, match="strings"):
        extract_hf(model, tok, [SHORT, 3])
    with pytest.raises(RepscopeError, match="pooling"):
        extract_hf(model, tok, [SHORT], pooling="max")
    with pytest.raises(RepscopeError, match="contradicts"):
        extract_hf(model, tok, [SHORT], pooling="cls", exclude_special=True)
    with pytest.raises(RepscopeError, match="tokenizer is required"):
        extract_hf(model, None, [SHORT])
    with pytest.raises(RepscopeError, match="batch_size"):
        extract_hf(model, tok, [SHORT], batch_size=0)
    with pytest.raises(ExtractionError, match="no real tokens"):
        extract_hf(model, tok, ["the", ""], exclude_special=True)


def test_truncation_warns(bert) -> None:
    model, tok = bert
    with pytest.warns(RepscopeWarning, match="1 of 2 texts reached max_length=8"):
        acts = extract_hf(model, tok, [SHORT, LONG], max_length=8)
    assert acts.provenance["options"]["max_length"] == 8
    assert acts.provenance["dataset_sha256"] == texts_hash([SHORT, LONG])
    alone = extract_hf(model, tok, [SHORT], max_length=8)
    np.testing.assert_allclose(acts["hidden.3"][0], alone["hidden.3"][0], atol=1e-5)


def test_model_given_as_path(bert_dir: Path, bert) -> None:
    from_path = extract_hf(bert_dir, None, [SHORT, LONG], layers=[-1])
    model, tok = bert
    direct = extract_hf(model, tok, [SHORT, LONG], layers=[-1])
    np.testing.assert_allclose(from_path["hidden.3"], direct["hidden.3"], atol=1e-6)


def test_load_hf_errors_and_offline_env(tmp_path: Path) -> None:
    with pytest.raises(RepscopeError, match="not a local Hugging Face model folder"):
        load_hf(tmp_path)
    before = os.environ.get("HF_HUB_OFFLINE")
    with offline_env():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ.get("HF_HUB_OFFLINE") == before


def test_progress_bar_counts_batches(bert, capfd) -> None:
    model, tok = bert
    extract_hf(model, tok, [SHORT] * 5, batch_size=2, progress=True)
    assert "3/3" in capfd.readouterr().err


# ----------------------------------------------------------- store
def test_store_roundtrip_provenance_and_reuse(bert, tmp_path: Path) -> None:
    model, tok = bert
    texts = [SHORT, LONG, "a dog ran"]
    store = ActivationStore(tmp_path / "s")
    ref = extract_hf(model, tok, texts, pooling="mean")
    acts = extract_hf(
        model, tok, texts, store=store, model_id="tiny", dataset_id="toy", revision="r1",
        chunk_rows=2,
    )  # fmt: skip
    assert store.keys() == sorted(f"tiny/hidden.{i}/mean" for i in range(4))
    for layer in ref:
        np.testing.assert_array_equal(acts.load(layer), ref[layer])
    p = store.provenance("tiny/hidden.2/mean")
    assert p["model"] == "tiny" and p["model_revision"] == "r1" and p["layer"] == "hidden.2"
    assert p["pooling"] == "mean" and p["dataset"] == "toy"
    assert p["dataset_sha256"] == texts_hash(texts) and p["weights_sha256"] == weights_hash(model)
    assert p["options"]["max_length"] == 64 and p["options"]["padding_side"] == "right"
    again = extract_hf(model, tok, texts, store=store, model_id="tiny")
    assert set(again.reused) == set(ref)


def test_store_per_token_index(bert, tmp_path: Path) -> None:
    model, tok = bert
    texts = [SHORT, LONG, "a dog ran"]
    mem = extract_hf(model, tok, texts, pooling="none", exclude_special=True, layers=[1])
    st = extract_hf(
        model, tok, texts, pooling="none", exclude_special=True, layers=[1],
        store=tmp_path / "s", model_id="tiny", batch_size=2,
    )  # fmt: skip
    assert st.store_keys == {"hidden.1": "tiny/hidden.1/none-nospecial"}
    np.testing.assert_array_equal(st.token_index, mem.token_index)
    np.testing.assert_array_equal(st.load("hidden.1"), mem["hidden.1"])
    assert mem.token_index[0].tolist() == [0, 0]  # 'the' is position 0 once [CLS] is excluded


def test_builtin_sentences() -> None:
    s = builtin_sentences()
    assert 250 <= len(s) <= 400
    assert len(set(s)) == len(s) and all(x and x == x.strip() for x in s)
    lengths = [len(x.split()) for x in s]
    assert min(lengths) <= 3 and max(lengths) >= 15  # varied lengths
    assert sum(x.endswith("?") for x in s) >= 20  # questions as well as statements


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(bert) -> None:
    model, tok = bert
    texts = [SHORT, LONG, "a dog ran"]
    for pooling in ("mean", "last", "none"):
        cpu = extract_hf(model, tok, texts, pooling=pooling)
        gpu = extract_hf(model, tok, texts, pooling=pooling, device="cuda")
        assert next(model.parameters()).device.type == "cpu"  # moved back afterwards
        for layer in cpu:
            np.testing.assert_allclose(gpu[layer], cpu[layer], atol=1e-4)
        if pooling == "none":
            np.testing.assert_array_equal(gpu.token_index, cpu.token_index)
