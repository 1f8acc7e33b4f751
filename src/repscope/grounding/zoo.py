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

#: seeds, training inputs (None = all 60 000), epochs, width, compared inputs per preset, and
#: the intervention groups of ReSi tests 3–5: test → data variants (``full`` is the plain
#: model; see :mod:`repscope.zoo.interventions`), trained with ``group_seeds`` seeds each
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"seeds": 5, "n_train": 12000, "epochs": 3.0, "width": 2, "n_inputs": 300,
              "group_seeds": 2,
              "groups": {"label_randomisation": ("full", "rand50", "rand75"),
                         "shortcut": ("short0", "short75", "short100"),
                         "augmentation": ("full", "aug1", "aug3")}},
    "full": {"seeds": 10, "n_train": None, "epochs": 4.0, "width": 4, "n_inputs": 500,
             "group_seeds": 5,
             "groups": {"label_randomisation": ("full", "rand50", "rand75"),
                        "shortcut": ("short0", "short75", "short100"),
                        "augmentation": ("full", "aug1", "aug2", "aug3")}},
    "test": {"seeds": 4, "n_train": 400, "epochs": 2.0, "width": 2, "n_inputs": 120,
             "group_seeds": 2,
             "groups": {"label_randomisation": ("full", "rand75"),
                        "shortcut": ("short0", "short100"),
                        "augmentation": ("full", "aug3")}},
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
    #: group tests (ReSi 3–5): test → {model → group label}; a grouped model that is not
    #: one of ``models`` needs only :attr:`group_layer` in ``reps``
    groups: dict[str, dict[str, str]] = field(default_factory=dict)
    #: whether ``labels`` are real (a study without labels has no accuracies)
    has_labels: bool = True

    @property
    def group_layer(self) -> str:
        """The layer the group tests compare: the last hidden one (before the logits)."""
        return self.layers[-2] if len(self.layers) >= 2 else self.layers[-1]

    @property
    def runnable(self) -> bool:
        """Whether every model can be run from a layer (the sensitivity tests need it)."""
        return bool(self.networks) and all(hasattr(self.networks.get(m), "forward_from")
                                           for m in self.models)

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
                    description: str = "", groups: dict[str, dict[str, str]] | None = None,
                    group_reps: dict[str, np.ndarray] | None = None) -> GroundingZoo:
    """A zoo from activations the caller already has (the user's own models).

    ``groups`` (optional): test of :data:`~repscope.grounding.groups.GROUP_TESTS` →
    {model → group label}; grouped models that are not in ``reps`` give their
    last-hidden-layer activations in ``group_reps``.
    """
    if not reps:
        raise InvalidParameterError("a grounding zoo needs at least one model")
    models = list(reps)
    layers = list(reps[models[0]])
    for m in models:
        if list(reps[m]) != layers:
            raise InvalidParameterError(f"model {m!r} has layers {list(reps[m])}, the first "
                                        f"model has {layers}: the tests compare layers by name")
    zoo = GroundingZoo(models, layers, {m: {k: np.asarray(v) for k, v in r.items()}
                                        for m, r in reps.items()},
                       {m: np.asarray(v, dtype=np.float64) for m, v in logits.items()},
                       np.asarray(labels), dict(networks or {}), description,
                       {t: dict(g) for t, g in (groups or {}).items()})
    from repscope.grounding.groups import GROUP_TESTS

    for test, members in zoo.groups.items():
        if test not in GROUP_TESTS:
            raise InvalidParameterError(f"unknown group test {test!r}; choose one of "
                                        f"{', '.join(GROUP_TESTS)}")
        for m in members:
            if m not in zoo.reps:
                if group_reps is None or m not in group_reps:
                    raise InvalidParameterError(f"grouped model {m!r} ({test}) has no "
                                                "activations: give them in group_reps")
                zoo.reps[m] = {zoo.group_layer: np.asarray(group_reps[m])}
    return zoo


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
    def spec(seed: int, data: str = "full") -> ModelSpec:
        return ModelSpec(family="cnn", width=p["width"], depth=2, seed=seed, data=data,
                         epochs=p["epochs"], n_train=p["n_train"],
                         factors=(("seed", str(seed)),) if data == "full" else
                         (("intervention", data),))

    specs = [spec(s) for s in range(p["seeds"])]
    groups: dict[str, dict[str, str]] = {}
    extra: dict[str, ModelSpec] = {}
    for test_name, variants in p["groups"].items():
        for v in variants:
            for s in range(p["group_seeds"]):
                sp = spec(s, v)
                groups.setdefault(test_name, {})[sp.name] = v
                if v != "full" or s >= p["seeds"]:
                    extra[sp.name] = sp
    from repscope.core.threads import single_threaded

    with single_threaded():  # tiny networks: 2 spinning threads are much slower under load
        zoo = train_population(specs + list(extra.values()), train, test, folder=folder,
                               progress=progress)
    idx = np.sort(np.random.default_rng(777).permutation(len(test))[: p["n_inputs"]])
    x = test.images[idx]
    reps, logits, nets, group_reps = {}, {}, {}, {}
    for sp in specs:
        net = zoo.load(sp.name)
        acts = extract_torch(net, x, net.layer_names, progress=False)
        reps[sp.name] = {k: np.asarray(acts[k], dtype=np.float64) for k in net.layer_names}
        logits[sp.name] = reps[sp.name]["logits"]
        nets[sp.name] = net
    for sp in extra.values():
        net = zoo.load(sp.name)
        layer = net.layer_names[-2]
        group_reps[sp.name] = np.asarray(extract_torch(net, x, [layer], progress=False)[layer],
                                         dtype=np.float64)
    n_group = len(extra)
    return zoo_from_arrays(reps, logits, test.labels[idx], nets,
                           f"{len(specs)} seeds of a CNN (width {p['width']}) trained on "
                           f"Fashion-MNIST ({p['n_train'] or 60000} inputs, {p['epochs']:g} "
                           f"epochs) and {n_group} more trained under interventions "
                           f"({p['group_seeds']} seeds per level), compared on {len(idx)} "
                           "clean test images", groups, group_reps)
