"""Causal language models as softmax-family models (tiny random transformers, no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from repscope.core.errors import InputShapeError, InvalidParameterError
from repscope.identifiability import SoftmaxModel, kl_divergence, llv_distance
from repscope.identifiability.model import log_softmax
from repscope.identifiability.next_token import (
    compare_next_token,
    frequent_tokens,
    load_causal_lm,
    next_token_kl,
    next_token_model,
    next_token_states,
)


class TinyCausalLM(nn.Module):
    """A 2-layer causal transformer: token ids (batch, T) → (logits, last hidden state)."""

    def __init__(self, vocab: int = 300, width: int = 16, seed: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(64, width)
        layer = nn.TransformerEncoderLayer(width, 2, 4 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=bias)
        if bias:
            nn.init.normal_(self.lm_head.bias, std=0.5)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = ids.shape[1]
        h = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)
        h = self.norm(self.blocks(h, mask=mask, is_causal=True))
        return self.lm_head(h), h

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head


class Reparametrised(nn.Module):
    """The same model with f ↦ A f and g ↦ A⁻ᵀ g + c, all in float64."""

    def __init__(self, base: TinyCausalLM, a: np.ndarray, c: np.ndarray) -> None:
        super().__init__()
        self.base = base
        self.a = torch.as_tensor(a)
        w = base.lm_head.weight.detach().double()
        self.head = nn.Linear(a.shape[0], w.shape[0], dtype=torch.float64)
        with torch.no_grad():
            self.head.weight.copy_(w @ torch.linalg.inv(self.a) + torch.as_tensor(c))
            self.head.bias.copy_(base.lm_head.bias.detach().double())

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, h = self.base(ids)
        h2 = h.double() @ self.a.T
        return self.head(h2), h2

    def get_output_embeddings(self) -> nn.Linear:
        return self.head


def text(n_seq: int = 12, length: int = 40, vocab: int = 300, seed: int = 0) -> list[np.ndarray]:
    """Zipf-distributed token ids, some sequences shorter (lengths differ)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    return [rng.choice(vocab, size=length - (i % 3) * 5, p=p) for i in range(n_seq)]


def test_states_are_the_models_own(rng: np.random.Generator) -> None:
    model = TinyCausalLM()
    seqs = text()
    st = next_token_states(model, seqs, batch_size=5)
    assert st.n_contexts == sum(s.size - 1 for s in seqs)
    np.testing.assert_array_equal(st.next_tokens, np.concatenate([s[1:] for s in seqs]))
    assert st.logit_error < 1e-5 and st.hidden.dtype == np.float64
    with torch.no_grad():  # the contexts of sequence 4, in order
        logits, _ = model(torch.as_tensor(seqs[4])[None])
    first = sum(s.size - 1 for s in seqs[:4])
    mine = st.logits(slice(first, first + seqs[4].size - 1))
    np.testing.assert_allclose(mine, logits[0, :-1].double().numpy(), atol=1e-5)


def test_full_vocabulary_kl_matches_the_definition() -> None:
    seqs = text(n_seq=4)
    a = next_token_states(TinyCausalLM(seed=0), seqs)
    b = next_token_states(TinyCausalLM(seed=1), seqs)
    kl = next_token_kl(a, b)
    la, lb = log_softmax(a.logits(), axis=1), log_softmax(b.logits(), axis=1)
    ref = np.mean(np.sum(np.exp(la) * (la - lb), axis=1))
    assert kl.forward == pytest.approx(ref, rel=1e-12) and kl.forward > 0
    # the same as the softmax-family model over every token
    full = kl_divergence(next_token_model(a, range(300)), next_token_model(b, range(300)))
    assert full.forward == pytest.approx(kl.forward, rel=1e-10)
    assert next_token_kl(a, a).forward == 0.0


def test_exact_reparametrisation_is_at_distance_zero(rng: np.random.Generator) -> None:
    """f ↦ A f, g ↦ A⁻ᵀ g + c (condition number 10³): KL, d_LLV, both ends of d_{f,g} = 0,
    m_CCA = 1, at every K of the curve."""
    base = TinyCausalLM(width=16, bias=True)
    q1, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    q2, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    a = q1 @ np.diag(np.geomspace(1.0, 1e3, 16)) @ q2
    other = Reparametrised(base, a, rng.normal(size=16))
    res = compare_next_token(base, other, text(n_seq=20, length=50),
                             label_counts=(64, 256, 1024), n_candidates=20, budget=500)
    assert res.kl.forward < 1e-8 and res.kl.reverse < 1e-8
    assert res.m_cca_f == pytest.approx(1.0, abs=1e-8)
    assert [p["k"] for p in res.curve] == [64, 256, 300]  # capped by the vocabulary
    for point in res.curve:
        assert "error" not in point, point
        assert point["d_llv"] < 1e-8 and point["d_llv_lower"] < 1e-8
        assert point["d_fg_lower"] < 1e-8 and point["d_fg_upper"] < 1e-8
    assert res.curve[-1]["unseen_labels"] >= 0 and res.curve[0]["label_share"] > 0.5


def test_two_seeds_give_a_curve_and_the_bias_enters_the_distribution() -> None:
    seqs = text(n_seq=16)
    a = next_token_states(TinyCausalLM(seed=0), seqs)
    b = next_token_states(TinyCausalLM(seed=1), seqs)
    res = compare_next_token(a, b, label_counts=(32, 128), n_candidates=20, budget=300)
    assert res.kl.forward > 0.01
    for point in res.curve:
        assert 0 < point["d_llv_lower"] <= point["d_llv"]
        assert 0 <= point["d_fg_lower"] <= point["d_fg_upper"] <= 2 * point["d_llv"] + 1e-12
        assert "not falsified" in point["bound_check"] or "fails" in point["bound_check"]
    labels = frequent_tokens(a.next_tokens, 32, a.vocab_size)
    m = next_token_model(a, labels)
    assert m.bias is not None and m.n_labels == 32 and m.dim == 16
    no_bias = SoftmaxModel(m.F, m.G)
    assert not np.allclose(m.log_likelihoods(), no_bias.log_likelihoods())
    # d_LLV of the label-restricted models is the same whether computed here or directly
    mb = next_token_model(b, labels)
    point = res.curve[0]
    assert llv_distance(m, mb, n_candidates=20).distance == pytest.approx(point["d_llv"])


def test_frequent_tokens_order_and_cap() -> None:
    nxt = np.array([5, 5, 5, 2, 2, 7, 9, 9])
    np.testing.assert_array_equal(frequent_tokens(nxt, 3, 10), [5, 2, 9])
    assert frequent_tokens(nxt, 50, 10).size == 10


def test_hugging_face_gpt2_from_a_local_directory(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=300, n_positions=64, n_embd=16, n_layer=2,
                                  n_head=2)
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        transformers.GPT2LMHeadModel(cfg).save_pretrained(tmp_path / f"gpt2-{seed}")
        paths.append(tmp_path / f"gpt2-{seed}")
    a, b = (load_causal_lm(p) for p in paths)
    seqs = text(n_seq=8, length=30)
    sa = next_token_states(a, seqs)
    assert sa.logit_error < 1e-4 and sa.bias is None and sa.hidden.shape[1] == 16
    res = compare_next_token(a, b, seqs, label_counts=(64,), n_candidates=10, budget=200)
    assert res.kl.forward > 0 and "error" not in res.curve[0]
    same = compare_next_token(a, load_causal_lm(paths[0]), seqs, label_counts=(64,),
                              n_candidates=10, budget=200)
    assert same.kl.forward == 0.0 and same.curve[0]["d_llv"] < 1e-10
    with pytest.raises(OSError):
        load_causal_lm(tmp_path / "missing")  # local only: nothing is downloaded


def test_errors() -> None:
    model = TinyCausalLM()
    with pytest.raises(InputShapeError):
        next_token_states(model, [np.array([3])])
    with pytest.raises(InputShapeError):
        next_token_states(model, [np.array([1.5, 2.0])])

    class Wrong(TinyCausalLM):
        def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits, h = super().forward(ids)
            return logits * 2.0, h  # a logit scale the unembedding does not know

    with pytest.raises(InvalidParameterError, match="not the one the unembedding reads"):
        next_token_states(Wrong(), text(n_seq=2))
    a = next_token_states(model, text(n_seq=2))
    b = next_token_states(model, text(n_seq=3))
    with pytest.raises(InputShapeError, match="same text"):
        next_token_kl(a, b)
    small = compare_next_token(a, a, label_counts=(8,), n_candidates=5)
    assert "error" in small.curve[0] and "M+1" in small.curve[0]["error"]
