"""The Fashion-MNIST population: train a preset, or one model for a study file.

:func:`train_fashion_population` trains a :func:`~repscope.zoo.population.population`
preset on Fashion-MNIST's training split (the Debian package
``dataset-fashion-mnist``) and evaluates it on the test split; :func:`pretrained`
is the study-file factory (``factory = "repscope.zoo.fashion:pretrained"``),
which trains the model once and then reads it from the zoo folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repscope.zoo.images import load_fashion_mnist
from repscope.zoo.population import ModelSpec, population
from repscope.zoo.training import TrainedZoo, load_network, train_population, zoo_dir

__all__ = ["pretrained", "train_fashion_population"]


def train_fashion_population(preset: str = "quick", *, folder: str | Path | None = None,
                             data_path: str | Path | None = None,
                             progress: bool = False) -> TrainedZoo:
    """Train (or read from the cache) every model of ``preset`` on Fashion-MNIST."""
    train = load_fashion_mnist("train", path=data_path)
    test = load_fashion_mnist("test", path=data_path)
    return train_population(population(preset), train, test, folder=folder, progress=progress)


def pretrained(family: str = "mlp", width: int = 128, depth: int = 3, seed: int = 0,
               data: str = "full", epochs: float = 4.0, n_train: int | None = None,
               folder: str | None = None) -> Any:
    """Factory for study files: one zoo network trained on Fashion-MNIST (cached).

    Its comparable layers are ``model.layer_names`` (``…, "embedding", "logits"``).
    """
    spec = ModelSpec(family=family, width=int(width), depth=int(depth), seed=int(seed),
                     data=data, epochs=float(epochs),
                     n_train=None if n_train is None else int(n_train))
    path = zoo_dir(folder) / f"{spec.name}.pt"
    if not path.exists():
        train_population([spec], load_fashion_mnist("train"), load_fashion_mnist("test"),
                         folder=folder)
    return load_network(spec, folder)
