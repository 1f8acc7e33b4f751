"""The representations the findings compare, per model and relative depth.

* image networks of the zoo, on a fixed subset of Fashion-MNIST test images
  (seed 0): the first, middle and last hidden layer (:func:`depth_layers`);
  convolutional and token-major outputs are averaged over positions, so a
  layer is one vector of channels per image; supervised networks also give their
  predicted classes and their output layer's weights (the unembeddings of the
  softmax class);
* tiny language models on held-out windows of their corpus: the state at the last
  position after the first, the middle block and the final norm, the predicted
  next token and the unembedding;
* MiniLM and MPNet (mean-pooled hidden states of the first, middle and last layer)
  on the sentences of ``repscope/data/sentences.txt``;
* MobileNetV2 (ImageNet weights) on resized, inverted RGB copies of the same images
  (the first block, the middle block and the pooled last convolution).

Representations wider than a quarter of the inputs (only the real networks) are
projected onto their leading principal components (a quarter of the inputs),
because held-out linear fits need more inputs per half than units; the
permutation class is then not judged (principal components mix units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repscope.core.optional import require

__all__ = ["Rep", "depth_layers", "image_reps", "lm_reps", "mobilenet_reps", "reduce_width",
           "sentence_reps"]


@dataclass
class Rep:
    """One model's representations of the compared inputs.

    ``layers`` maps a relative depth to ``(layer name, (n, d) array)``; ``outputs``
    are predicted labels (or ``None``), ``unembedding`` the output weights ``(K, d)``
    of the last depth (or ``None``); ``info`` carries accuracy and provenance.
    """

    name: str
    layers: dict[str, tuple[str, np.ndarray]]
    outputs: np.ndarray | None = None
    unembedding: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    reduced: bool = False


def depth_layers(hidden: list[str]) -> dict[str, str]:
    """First, middle (index ``(L − 1) // 2``) and last of the hidden layers."""
    return {"first": hidden[0], "middle": hidden[(len(hidden) - 1) // 2], "last": hidden[-1]}


def _pool(t: Any) -> np.ndarray:
    """``(n, c, h, w)`` → mean over positions; ``(n, tokens, d)`` → mean over tokens."""
    a = t.detach().float()
    if a.ndim == 4:
        a = a.mean(dim=(2, 3))
    elif a.ndim == 3:
        a = a.mean(dim=1)
    return a.numpy().astype(np.float64)


def _record(model: Any, names: list[str], run: Any) -> dict[str, np.ndarray]:
    """Run ``run()`` with forward hooks on the modules ``names``; their pooled outputs."""
    mods = dict(model.named_modules())
    got: dict[str, np.ndarray] = {}
    handles = [mods[n].register_forward_hook(
        lambda _m, _i, out, n=n: got.__setitem__(n, _pool(out[0] if isinstance(out, tuple)
                                                          else out)))
        for n in dict.fromkeys(names)]
    try:
        with require("torch").no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return got


def image_reps(model: Any, name: str, images: np.ndarray, info: dict[str, Any]) -> Rep:
    """The relative-depth layers of a zoo network (and its predictions when supervised)."""
    torch = require("torch", purpose="the findings")
    picks = depth_layers(model.layer_names[:-1])
    x = torch.as_tensor(images, dtype=torch.float32)
    result: dict[str, Any] = {}
    got = _record(model, list(picks.values()),
                  lambda: result.__setitem__("out", model(x)))
    supervised = not hasattr(model, "reconstruct")
    outputs = result["out"].argmax(1).numpy() if supervised else None
    unemb = model.logits.weight.detach().double().numpy() if supervised else None
    return Rep(name, {d: (layer, got[layer]) for d, layer in picks.items()}, outputs, unemb,
               info)


def lm_reps(model: Any, name: str, windows: np.ndarray, info: dict[str, Any]) -> Rep:
    """Last-position states of a tiny language model on held-out windows."""
    torch = require("torch", purpose="the findings")
    n_blocks = len(model.blocks)
    picks = {"first": "blocks.0", "middle": f"blocks.{(n_blocks - 1) // 2}", "last": "ln_f"}
    states: dict[str, np.ndarray] = {}
    mods = dict(model.named_modules())
    handles = [mods[m].register_forward_hook(
        lambda _m, _i, out, m=m: states.__setitem__(m, out[:, -1].detach().double().numpy()))
        for m in dict.fromkeys(picks.values())]
    try:
        with torch.no_grad():
            logits, _ = model(torch.as_tensor(windows, dtype=torch.long))
    finally:
        for h in handles:
            h.remove()
    outputs = logits[:, -1].argmax(-1).numpy()
    unemb = model.lm_head.weight.detach().double().numpy()
    return Rep(name, {d: (m, states[m]) for d, m in picks.items()}, outputs, unemb, info)


def reduce_width(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` projected onto its ``k`` leading principal components (centred), when wider."""
    if x.shape[1] <= k:
        return x
    xc = x - x.mean(0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    return u[:, :k] * s[:k]


def sentence_reps(name: str, texts: list[str]) -> Rep:
    """Mean-pooled hidden states of a built-in sentence encoder (first, middle, last)."""
    from repscope.extract import extract_hf
    from repscope.extract.pretrained import load, revision

    model, tok = load(name)
    n_layers = int(model.config.num_hidden_layers)
    picks = {"first": 1, "middle": n_layers // 2, "last": n_layers}
    acts = extract_hf(model, tok, texts, layers=sorted(set(picks.values())), pooling="mean",
                      progress=False)
    layers = {d: (f"hidden.{i}", np.asarray(acts[f"hidden.{i}"], dtype=np.float64))
              for d, i in picks.items()}
    return Rep(name, layers, None, None, {"layers": n_layers, "revision": revision(name)})


def mobilenet_reps(images: np.ndarray, size: int) -> Rep:
    """MobileNetV2 (ImageNet) on resized, inverted RGB copies of ``images``."""
    from repscope.zoo.mobilenet import imagenet_inputs, load_mobilenet_v2

    model, digest = load_mobilenet_v2()
    picks = {"first": "features.1", "middle": "features.9", "last": "features.18"}
    x = imagenet_inputs(images, size=size)
    got: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(x), 64):
        part = _record(model, list(picks.values()), lambda i=i: model(x[i:i + 64]))
        for k, v in part.items():
            got.setdefault(k, []).append(v)
    layers = {d: (m, np.vstack(got[m])) for d, m in picks.items()}
    return Rep("MobileNetV2-ImageNet", layers, None, None,
               {"sha256": digest, "input_size": size, "inputs": int(len(images))})
