"""The models the grounding tests run on: seeds of one network, their layers and outputs.

The built-in zoo is the CNN of :mod:`repscope.zoo.architectures` (layers of
different widths, as in Kornblith et al. 2019: ``conv1`` 4 × 14 × 14 = 784,
``conv2`` 8 × 7 × 7 = 392, ``embedding`` 16 and ``logits`` 10 units at width
4; half of that at width 2, the quick preset) trained on Fashion-MNIST with several seeds
(:func:`repscope.zoo.training.train_population`, cached), compared on a fixed
subset of the test split.  :class:`GroundingZoo` holds what every test needs:
each model's layer activations, logits, test labels and a way to run the rest
of a model from a layer (``forward_from``) for the sensitivity test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError

__all__ = ["PRESETS", "GroundingZoo", "build_zoo", "zoo_from_arrays"]

#: seeds, training inputs (None = all 60 000), epochs, width and compared inputs per preset
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"seeds": 5, "n_train": 12000, "epochs": 3.0, "width": 2, "n_inputs": 300},
    "full": {"seeds": 10, "n_train": None, "epochs": 4.0, "width": 4, "n_inputs": 2000},
    "test": {"seeds": 4, "n_train": 400, "epochs": 2.0, "width": 2, "n_inputs": 120},
}


@dataclass
class GroundingZoo:
    """Models (seeds), their layers in order, activations, logits and the labels."""

    models: list[str]
    layers: list[str]
    reps: dict[str, dict[str, np.ndarray]]
    logits: dict[str, np.ndarray]
    labels: np.ndarray
    networks: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def accuracy(self, model: str) -> float:
        return float((self.logits[model].argmax(1) == self.labels).mean())

    def rerun(self, model: str, layer: str, h: np.ndarray) -> np.ndarray | None:
        """Logits of ``model`` run from ``layer`` on activations ``h``; ``None`` when the
        model cannot be run from a layer (then the sensitivity tests are skipped)."""
        net = self.networks.get(model)
        if net is None or not hasattr(net, "forward_from"):
            return None
        import torch

        with torch.no_grad():
            out = net.forward_from(layer, torch.as_tensor(np.asarray(h, dtype=np.float32)))
        return out.numpy().astype(np.float64)


def zoo_from_arrays(reps: dict[str, dict[str, np.ndarray]], logits: dict[str, np.ndarray],
                    labels: np.ndarray, networks: dict[str, Any] | None = None,
                    description: str = "") -> GroundingZoo:
    """A zoo from activations the caller already has (the user's own models)."""
    models = list(reps)
    layers = list(reps[models[0]])
    for m in models:
        if list(reps[m]) != layers:
            raise InvalidParameterError(f"model {m!r} has layers {list(reps[m])}, the first "
                                        f"model has {layers}: the tests compare layers by name")
    return GroundingZoo(models, layers, {m: {k: np.asarray(v) for k, v in r.items()}
                                         for m, r in reps.items()},
                        {m: np.asarray(v, dtype=np.float64) for m, v in logits.items()},
                        np.asarray(labels), dict(networks or {}), description)


def build_zoo(preset: str = "quick", *, folder: str | Path | None = None,
              data_path: str | Path | None = None, progress: bool = False) -> GroundingZoo:
    """Train (or read from the cache) the seeds of ``preset`` and record their layers."""
    from repscope.extract import extract_torch
    from repscope.zoo.images import load_fashion_mnist
    from repscope.zoo.population import ModelSpec
    from repscope.zoo.training import train_population

    try:
        p = PRESETS[preset]
    except KeyError:
        raise InvalidParameterError(f"unknown preset {preset!r}; choose one of "
                                    f"{', '.join(PRESETS)}") from None
    train = load_fashion_mnist("train", path=data_path)
    test = load_fashion_mnist("test", path=data_path)
    specs = [ModelSpec(family="cnn", width=p["width"], depth=2, seed=s, epochs=p["epochs"],
                       n_train=p["n_train"], factors=(("seed", str(s)),))
             for s in range(p["seeds"])]
    zoo = train_population(specs, train, test, folder=folder, progress=progress)
    idx = np.sort(np.random.default_rng(777).permutation(len(test))[: p["n_inputs"]])
    x = test.images[idx]
    reps, logits, nets = {}, {}, {}
    for spec in specs:
        net = zoo.load(spec.name)
        acts = extract_torch(net, x, net.layer_names, progress=False)
        reps[spec.name] = {k: np.asarray(acts[k], dtype=np.float64) for k in net.layer_names}
        logits[spec.name] = reps[spec.name]["logits"]
        nets[spec.name] = net
    return zoo_from_arrays(reps, logits, test.labels[idx], nets,
                           f"{len(specs)} seeds of a CNN (width {p['width']}) trained on "
                           f"Fashion-MNIST ({p['n_train'] or 60000} inputs, {p['epochs']:g} "
                           f"epochs), compared on {len(idx)} test images")
