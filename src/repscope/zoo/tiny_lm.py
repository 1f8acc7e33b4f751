r"""Tiny causal language models trained here on real English text, cached with provenance.

The network (:class:`TinyCausalLM`, written here): token and learned position
embeddings, ``layers`` pre-norm transformer blocks (causal multi-head
self-attention and a 4× GELU MLP, each ``x + sublayer(LayerNorm(x))``), a final
LayerNorm and an untied unembedding with a bias.  ``forward(ids)`` returns
``(logits, h)`` with ``h`` the final-norm output, so ``logits = h·Wᵀ + b``
exactly and :mod:`repscope.identifiability.next_token` reads f = h.

Training (:func:`train_language_models`): AdamW (lr 3e-3, weight decay 0.01,
linear warm-up over the first 5 % of steps then cosine decay to 10 %), batches
of ``batch_size`` windows of ``context`` tokens drawn at random from the
training split.  The seed sets the initialisation only; every model sees the
same windows in the same order (a fixed data seed), so two seeds differ by
their initialisation alone.  Runs are deterministic on CPU for a seed.

Cached in the zoo folder (``$REPSCOPE_ZOO_DIR``): ``<name>.pt`` (state dict,
read with ``weights_only=True``) and an entry of ``manifest.json``
(``"language_models"``): spec, tokeniser file and SHA-256, data (corpus,
SHA-256, training and held-out tokens), steps, tokens seen, training FLOPs
(``3 × (2N + 2·L·T·d)`` per token: forward and backward of the N non-embedding
parameters, unembedding included, and of attention over a context of T), the
weights' SHA-256, held-out loss (nats per token) and the seconds it took.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.core.optional import require
from repscope.zoo.lm_data import Tokenizer, encode, split_text, text_corpus, train_tokenizer
from repscope.zoo.training import _read_manifest, _sha256_file, _write_manifest, zoo_dir

__all__ = ["LM_PRESETS", "LMSpec", "LMZoo", "build_lm", "held_out_windows", "lm_population",
           "train_language_models"]

DATA_SEED = 1234
LEARNING_RATE = 3e-3


@dataclass(frozen=True)
class LMSpec:
    """One tiny language model: corpus, tokeniser size, shape, seed and token budget."""

    corpus: str = "shakespeare"
    vocab_size: int = 2048
    width: int = 64
    layers: int = 2
    heads: int = 4
    context: int = 64
    tokens: int = 1_000_000
    batch_size: int = 32
    seed: int = 0

    @property
    def name(self) -> str:
        return (f"lm-{self.corpus}-v{self.vocab_size}-w{self.width}-l{self.layers}"
                f"-h{self.heads}-c{self.context}-t{self.tokens}-b{self.batch_size}-s{self.seed}")

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.tokens / (self.batch_size * self.context)))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name}


#: presets: shapes, seeds and token budgets (times measured on 2 shared CPU cores)
LM_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"vocab_size": 2048, "widths": (32, 64), "layers": 2, "heads": 4, "seeds": 3,
              "context": 64, "tokens": 500_000, "batch_size": 32},
    "full": {"vocab_size": 2048, "widths": (32, 64, 128, 256), "layers": 2, "heads": 4,
             "seeds": 3, "context": 64, "tokens": 1_000_000, "batch_size": 32},
    "test": {"vocab_size": 300, "widths": (8, 16), "layers": 1, "heads": 2, "seeds": 2,
             "context": 16, "tokens": 8_192, "batch_size": 16},
}


def lm_population(preset: str = "quick", corpus: str = "shakespeare") -> list[LMSpec]:
    """The models of a preset (every width × seed), narrowest first."""
    try:
        p = LM_PRESETS[preset]
    except KeyError:
        raise InvalidParameterError(f"unknown preset {preset!r}; choose one of "
                                    f"{', '.join(LM_PRESETS)}") from None
    base = LMSpec(corpus=corpus, vocab_size=p["vocab_size"], layers=p["layers"],
                  heads=p["heads"], context=p["context"], tokens=p["tokens"],
                  batch_size=p["batch_size"])
    return [replace(base, width=w, seed=s) for w in p["widths"] for s in range(p["seeds"])]


def build_lm(spec: LMSpec) -> Any:
    """An untrained :class:`TinyCausalLM` of ``spec`` (initialised from the torch RNG)."""
    nn = require("torch", purpose="the zoo's language models").nn
    if spec.width % spec.heads:
        raise InvalidParameterError(f"width {spec.width} is not a multiple of heads "
                                    f"{spec.heads}")
    return _model_class(nn)(spec.vocab_size, spec.width, spec.layers, spec.heads, spec.context)


_CLASS: dict[str, Any] = {}


def _model_class(nn: Any) -> Any:
    """Define the torch classes on first use (torch is optional for the package)."""
    if "lm" in _CLASS:
        return _CLASS["lm"]
    import torch
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self, width: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                     nn.Linear(4 * width, width))

        def forward(self, x: Any) -> Any:
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2)
                       for z in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
            return x + self.mlp(self.ln2(x))

    class TinyCausalLM(nn.Module):
        """Token + position embeddings, pre-norm blocks, final norm, unembedding with bias;
        ``forward(ids) → (logits, h)`` with ``logits = h·Wᵀ + b``."""

        def __init__(self, vocab: int, width: int, layers: int, heads: int,
                     context: int) -> None:
            super().__init__()
            self.context = context
            self.tok = nn.Embedding(vocab, width)
            self.pos = nn.Embedding(context, width)
            self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
            self.ln_f = nn.LayerNorm(width)
            self.lm_head = nn.Linear(width, vocab, bias=True)
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, std=0.02)
                    if getattr(m, "bias", None) is not None:
                        nn.init.zeros_(m.bias)

        def forward(self, ids: Any) -> tuple[Any, Any]:
            t = ids.shape[1]
            if t > self.context:
                raise InvalidParameterError(f"sequences of {t} tokens exceed the context "
                                            f"{self.context}")
            x = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))
            for blk in self.blocks:
                x = blk(x)
            h = self.ln_f(x)
            return self.lm_head(h), h

        def get_output_embeddings(self) -> Any:
            return self.lm_head

    _CLASS["lm"] = TinyCausalLM
    return TinyCausalLM


def _flops_per_token(model: Any, spec: LMSpec) -> int:
    n = sum(p.numel() for name, p in model.named_parameters()
            if not name.startswith(("tok.", "pos.")))
    return 3 * (2 * n + 2 * spec.layers * spec.context * spec.width)


def held_out_windows(ids: np.ndarray, context: int, n_windows: int) -> np.ndarray:
    """``n_windows`` consecutive non-overlapping windows of ``context`` tokens from the
    start of the held-out ids (fewer when the text is shorter): the comparison contexts."""
    n = min(n_windows, ids.size // context)
    if n < 1:
        raise InvalidParameterError(f"the held-out text has {ids.size} tokens, fewer than "
                                    f"one context of {context}")
    return ids[: n * context].reshape(n, context)


def _held_out_loss(model: Any, windows: np.ndarray) -> float:
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), 64):
            x = torch.as_tensor(windows[i:i + 64])
            logits, _ = model(x[:, :-1])
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
            total += float(loss)
            count += int(x[:, 1:].numel())
    return total / count


def _train_one(spec: LMSpec, train_ids: np.ndarray, windows: np.ndarray, folder: Path,
               tok: Tokenizer, data: dict[str, Any], say: Callable[[str], None]
               ) -> dict[str, Any]:
    import torch

    from repscope.core.version import __version__

    torch.manual_seed(spec.seed)
    model = build_lm(spec)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": rest, "weight_decay": 0.0}], lr=LEARNING_RATE)
    steps, warm = spec.steps, max(1, spec.steps // 20)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        frac = (step - warm) / max(1, steps - warm)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = np.random.default_rng(DATA_SEED)
    ids = torch.as_tensor(train_ids)
    span = np.arange(spec.context + 1)
    say(f"training {spec.name} ({steps} steps, {steps * spec.batch_size * spec.context} "
        "tokens)")
    start = time.perf_counter()
    model.train()
    for _ in range(steps):
        starts = gen.integers(0, train_ids.size - spec.context - 1, size=spec.batch_size)
        batch = ids[torch.as_tensor(starts[:, None] + span)]
        logits, _ = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    model.eval()
    path = folder / f"{spec.name}.pt"
    torch.save(model.state_dict(), path)
    seen = steps * spec.batch_size * spec.context
    return {"spec": spec.to_dict(), "tokenizer": {"file": tok.path.name, "sha256": tok.sha256},
            "data": data, "steps": steps, "tokens_seen": seen,
            "training_flops": _flops_per_token(model, spec) * seen,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "weights_sha256": _sha256_file(path),
            "held_out_loss": _held_out_loss(model, windows), "train_seconds": seconds,
            "versions": {"repscope": __version__, "torch": torch.__version__}}


class _one_thread:
    """One torch thread while training: on a shared 2-core machine two threads were 3.5×
    slower per step than one (contention), and one thread keeps runs reproducible."""

    def __enter__(self) -> None:
        torch = require("torch")
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        require("torch").set_num_threads(self.before)


@dataclass
class LMZoo:
    """Trained language models of one corpus: the folder, the tokeniser, the held-out ids
    and the manifest entries by model name."""

    folder: Path
    tokenizer: Tokenizer
    held_out_ids: np.ndarray
    entries: dict[str, dict[str, Any]]
    specs: dict[str, LMSpec]

    def load(self, name: str) -> Any:
        """Model ``name`` in eval mode, its weights checked against the manifest."""
        torch = require("torch", purpose="loading the zoo")
        path = self.folder / f"{name}.pt"
        if _sha256_file(path) != self.entries[name]["weights_sha256"]:
            raise RepscopeError(f"{path} differs from its manifest entry; delete it to retrain")
        model = build_lm(self.specs[name])
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()

    def windows(self, context: int, n_windows: int) -> np.ndarray:
        return held_out_windows(self.held_out_ids, context, n_windows)


def train_language_models(specs: Sequence[LMSpec], *, folder: str | Path | None = None,
                          corpus_path: str | Path | None = None, n_eval_windows: int = 64,
                          progress: bool = False) -> LMZoo:
    """Train (or find in the cache) every model of ``specs`` (one corpus and vocabulary).

    The tokeniser is trained once on the training split; a model whose manifest entry,
    weights file (same SHA-256), tokeniser and data hashes are present is read back."""
    from filelock import FileLock

    if not specs:
        raise InvalidParameterError("no language models to train")
    if len({(s.corpus, s.vocab_size) for s in specs}) != 1:
        raise InvalidParameterError("all models of one call must share corpus and vocabulary")
    target = zoo_dir(folder)
    target.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        if progress:
            import sys

            print(f"repscope zoo: {msg}", file=sys.stderr, flush=True)

    split = split_text(text_corpus(specs[0].corpus, path=corpus_path))
    with FileLock(str(target / ".zoo.lock")):
        tok = train_tokenizer(split, specs[0].vocab_size, target)
        train_ids, held_ids = encode(tok, split.train), encode(tok, split.held_out)
        data = {"corpus": split.corpus, "sha256": split.sha256,
                "train_tokens": int(train_ids.size), "held_out_tokens": int(held_ids.size)}
        manifest = _read_manifest(target)
        book = manifest.setdefault("language_models", {})
        manifest.setdefault("tokenizers", {})[tok.path.name] = {
            "sha256": tok.sha256, "corpus": split.corpus, "data_sha256": split.sha256,
            "vocab_size": tok.vocab_size}
        for spec in specs:
            e = book.get(spec.name)
            path = target / f"{spec.name}.pt"
            if (e and path.exists() and e["tokenizer"]["sha256"] == tok.sha256
                    and e["data"]["sha256"] == split.sha256
                    and e["weights_sha256"] == _sha256_file(path)):
                continue
            windows = held_out_windows(held_ids, spec.context, n_eval_windows)
            with _one_thread():
                book[spec.name] = _train_one(spec, train_ids, windows, target, tok, data, say)
            _write_manifest(target, manifest)
        _write_manifest(target, manifest)
    return LMZoo(target, tok, held_ids, {s.name: book[s.name] for s in specs},
                 {s.name: s for s in specs})
