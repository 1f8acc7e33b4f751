"""Populations of image networks that differ in one factor at a time.

:func:`population` lists the models of a preset as :class:`ModelSpec`;
:mod:`repscope.zoo.training` trains them (once, cached with provenance).  The
factors, each varied around one base model (an MLP of width 128 and depth 3
trained on all of the training set):

========== ====================================================================
seed       5 seeds of the base model (``quick``: 3)
width      widths 32 … 512, a 16× range (``quick``: 32, 128, 512)
depth      1 to 4 hidden layers (``quick``: 1, 3)
architecture  MLP, CNN and MLP-Mixer, 2 seeds each
objective  supervised MLP against an autoencoder of the same encoder, 2 seeds each
data       disjoint halves of the training set; 20 % of the labels replaced at random
time       checkpoints of the base run at 1/8, 1/4, 1/2, 1 and all epochs
========== ====================================================================

A model that belongs to several factors (the base model, seed 0) is listed
once with all of its factors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError

__all__ = ["DATA_VARIANTS", "PRESETS", "ModelSpec", "population", "training_subset"]

#: how a model's training set is drawn from the training split
DATA_VARIANTS = ("full", "half0", "half1", "noise20")


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo: architecture, size, seed, training data and duration."""

    family: str = "mlp"
    width: int = 128
    depth: int = 3
    seed: int = 0
    data: str = "full"
    epochs: float = 4.0
    n_train: int | None = None
    factors: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        n = "" if self.n_train is None else f"-n{self.n_train}"
        return (f"{self.family}-w{self.width}-d{self.depth}-{self.data}{n}-s{self.seed}"
                f"-e{self.epochs:g}")

    @property
    def objective(self) -> str:
        return "autoencoding" if self.family == "autoencoder" else "supervised"

    @property
    def run_key(self) -> str:
        """Models with the same run key are checkpoints of one training run."""
        return self.name.rsplit("-e", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["factors"] = [list(f) for f in self.factors]
        d["name"], d["objective"] = self.name, self.objective
        return d


#: the presets: training-set size (None = all 60 000), epochs, seeds, widths, depths
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"n_train": 6000, "epochs": 2.0, "seeds": 3, "widths": (32, 128, 512),
              "depths": (1, 3), "arch_widths": {"mlp": 128, "cnn": 8, "mixer": 32}},
    "full": {"n_train": None, "epochs": 4.0, "seeds": 5, "widths": (32, 64, 128, 256, 512),
             "depths": (1, 2, 3, 4), "arch_widths": {"mlp": 128, "cnn": 16, "mixer": 64}},
    "test": {"n_train": 400, "epochs": 1.0, "seeds": 2, "widths": (8, 32), "depths": (1, 2),
             "arch_widths": {"mlp": 16, "cnn": 2, "mixer": 8}},
}


def population(preset: str = "quick") -> list[ModelSpec]:
    """The models of ``preset`` (``"quick"``, ``"full"`` or ``"test"``), base model first."""
    try:
        p = PRESETS[preset]
    except KeyError:
        raise InvalidParameterError(f"unknown preset {preset!r}; choose one of "
                                    f"{', '.join(PRESETS)}") from None
    base = ModelSpec(width=p["arch_widths"]["mlp"], epochs=p["epochs"], n_train=p["n_train"])
    entries: list[tuple[ModelSpec, str, str]] = []
    for s in range(p["seeds"]):
        entries.append((replace(base, seed=s), "seed", str(s)))
    for w in p["widths"]:
        entries.append((replace(base, width=w), "width", str(w)))
    for d in p["depths"]:
        entries.append((replace(base, depth=d), "depth", str(d)))
    for fam, w in p["arch_widths"].items():
        for s in range(2):
            entries.append((replace(base, family=fam, width=w, depth=3 if fam == "mlp" else 2,
                                    seed=s), "architecture", fam))
    for s in range(2):
        entries.append((replace(base, seed=s), "objective", "supervised"))
        entries.append((replace(base, family="autoencoder", seed=s), "objective", "autoencoding"))
    for variant in ("full", "half0", "half1", "noise20"):
        entries.append((replace(base, data=variant), "data", variant))
    for frac in (0.125, 0.25, 0.5, 1.0, p["epochs"]):
        entries.append((replace(base, epochs=float(frac)), "time", f"{frac:g}"))
    merged: dict[str, ModelSpec] = {}
    for spec, factor, level in entries:
        old = merged.get(spec.name)
        tags = (old.factors if old else ()) + ((factor, level),)
        merged[spec.name] = replace(spec, factors=tuple(dict.fromkeys(tags)))
    return list(merged.values())


def training_subset(labels: np.ndarray, spec: ModelSpec, n_classes: int = 10
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, labels)`` of the training inputs of ``spec``.

    ``n_train`` first takes a fixed (seed 12345) random subset of the split, the
    same for every model; ``half0``/``half1`` are its two disjoint halves
    (another fixed permutation); ``noise20`` replaces 20 % of the labels by a
    different class, drawn with a fixed seed (the same corrupted set for every
    seed of the model).  The interventions of :mod:`repscope.zoo.interventions`
    (``rand<P>``, ``short<P>``, ``aug<S>``) start from the whole subset; ``rand<P>``
    randomises its labels here, the others act on the images during training.
    """
    from repscope.zoo.interventions import parse_intervention, randomise_labels

    if spec.data not in DATA_VARIANTS and parse_intervention(spec.data) is None:
        raise InvalidParameterError(f"unknown data variant {spec.data!r}; choose one of "
                                    f"{', '.join(DATA_VARIANTS)} or an intervention "
                                    "(rand<P>, short<P>, aug<S>)")
    n = labels.shape[0]
    idx = np.arange(n)
    if spec.n_train is not None:
        if spec.n_train > n:
            raise InvalidParameterError(f"n_train = {spec.n_train} > {n} training inputs")
        idx = np.sort(np.random.default_rng(12345).permutation(n)[: spec.n_train])
    y = labels[idx].astype(np.int64).copy()
    if spec.data in ("half0", "half1"):
        perm = np.random.default_rng(54321).permutation(idx.size)
        half = perm[: idx.size // 2] if spec.data == "half0" else perm[idx.size // 2:]
        half = np.sort(half)
        return idx[half], y[half]
    if spec.data == "noise20":
        rng = np.random.default_rng(2020)
        flip = rng.random(idx.size) < 0.2
        shift = rng.integers(1, n_classes, size=idx.size)
        y[flip] = (y[flip] + shift[flip]) % n_classes
    return idx, randomise_labels(y, spec.data, n_classes)
