"""The findings' populations: which models, and which pairs answer which question.

:func:`plan` lists, for a preset, the image networks (zoo :class:`ModelSpec`), the
tiny language models (:class:`LMSpec`) and the *groups* of pairs behind each
factor.  A group is a set of model pairs with a question: "seeds of the base
MLP", "MLPs of width 32, different seeds", "checkpoint at 1/8 epoch vs the final
model of the same run".  Every pair carries two *units*, the independent things
a model-resampling bootstrap draws (the model itself; or the seed of the run,
when a pair compares two models of one seed, e.g. a checkpoint and its final
model, or the two disjoint data halves trained from one seed).

Widths are kept below half the number of compared inputs, so that the held-out
fits of the invariance profile have more inputs than units in each half.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from repscope.core.errors import InvalidParameterError
from repscope.zoo.population import ModelSpec
from repscope.zoo.tiny_lm import LMSpec

__all__ = ["DEPTHS", "PLANS", "FindingsPlan", "Group", "plan"]

#: the relative depths findings are stated at
DEPTHS = ("first", "middle", "last")

#: per preset: training set and epochs, the base MLP, the levels of each factor,
#: inputs compared, profile resamples, language models and real-network inputs
PLANS: dict[str, dict[str, Any]] = {
    "quick": {"n_train": 30000, "epochs": 2.0, "base_width": 32, "widths": (8, 32, 128),
              "seeds": 3, "depths": (1, 2, 3), "arch": {"mlp": 32, "cnn": 4, "mixer": 16},
              "arch_seeds": 2, "objective_seeds": 2, "data_seeds": 2,
              "time": (0.125, 0.25, 0.5, 1.0), "time_seeds": 3, "n_inputs": 300,
              "n_boot": 100, "n_margin": 10, "n_models_boot": 400,
              "lm": {"corpus": "shakespeare", "vocab_size": 1024, "widths": (16, 32),
                     "seeds": 3, "layers": 2, "heads": 2, "context": 32,
                     "tokens": 100_000, "batch_size": 32},
              "n_windows": 300, "n_sentences": 316, "mobilenet_size": 96},
    "full": {"n_train": None, "epochs": 4.0, "base_width": 64,
             "widths": (16, 32, 64, 128, 256), "seeds": 5, "depths": (1, 2, 3, 4),
             "arch": {"mlp": 64, "cnn": 8, "mixer": 32}, "arch_seeds": 3,
             "objective_seeds": 3, "data_seeds": 3, "time": (0.125, 0.25, 0.5, 1.0, 2.0),
             "time_seeds": 5, "n_inputs": 1000, "n_boot": 200, "n_margin": 20,
             "n_models_boot": 1000,
             "lm": {"corpus": "shakespeare", "vocab_size": 2048, "widths": (32, 64, 128),
                    "seeds": 3, "layers": 2, "heads": 4, "context": 64,
                    "tokens": 500_000, "batch_size": 32},
             "n_windows": 600, "n_sentences": 316, "mobilenet_size": 160},
    "test": {"n_train": 400, "epochs": 1.0, "base_width": 8, "widths": (4, 8, 16),
             "seeds": 3, "depths": (1, 2), "arch": {"mlp": 8, "cnn": 2, "mixer": 8},
             "arch_seeds": 2, "objective_seeds": 2, "data_seeds": 2, "time": (0.25, 0.5),
             "time_seeds": 3, "n_inputs": 60, "n_boot": 50, "n_margin": 5,
             "n_models_boot": 100,
             "lm": {"corpus": "generated", "vocab_size": 300, "widths": (8, 16), "seeds": 3,
                    "layers": 1, "heads": 2, "context": 16, "tokens": 8_192,
                    "batch_size": 16},
             "n_windows": 40, "n_sentences": 40, "mobilenet_size": 32},
}


@dataclass(frozen=True)
class Group:
    """Pairs of models that answer one question of a factor.

    ``pairs`` holds ``(a, b, unit_a, unit_b)``; ``level`` is the factor's level when the
    group is one point of a trend (a width, a checkpoint's epochs), else ``None``.
    """

    factor: str
    name: str
    question: str
    pairs: tuple[tuple[str, str, str, str], ...]
    level: float | None = None
    kind: str = "image"

    @property
    def key(self) -> str:
        return f"{self.factor}: {self.name}"


@dataclass
class FindingsPlan:
    """Everything one preset computes (see the module docstring)."""

    preset: str
    settings: dict[str, Any]
    images: list[ModelSpec]
    lms: list[LMSpec]
    groups: list[Group] = field(default_factory=list)


def _all_pairs(models: list[Any], by_seed: bool = False) -> tuple[tuple[str, str, str, str], ...]:
    """Every pair of ``models``; units are the models, or their seeds (``by_seed``: the
    levels of a trend are then resampled jointly, seed by seed)."""
    def unit(m: Any) -> str:
        return f"seed{m.seed}" if by_seed else str(m.name)

    return tuple((a.name, b.name, unit(a), unit(b)) for a, b in itertools.combinations(models, 2))


def _image_groups(p: dict[str, Any], base: ModelSpec) -> tuple[list[ModelSpec], list[Group]]:
    specs: list[ModelSpec] = []
    groups: list[Group] = []

    def seeds(spec: ModelSpec, n: int) -> list[ModelSpec]:
        out = [replace(spec, seed=s) for s in range(n)]
        specs.extend(out)
        return out

    groups.append(Group("seed", f"base MLP (width {base.width}), different seeds",
                        "How alike are networks that differ only in their initial weights?",
                        _all_pairs(seeds(base, p["seeds"]))))
    at_seed0 = []
    for w in p["widths"]:
        ms = seeds(replace(base, width=w), p["seeds"])
        at_seed0.append(ms[0])
        groups.append(Group("width", f"width {w}, different seeds", "Are wider networks more "
                            "alike across seeds?", _all_pairs(ms, by_seed=True),
                            level=float(w)))
    groups.append(Group("width", "different widths, seed 0", "How alike are networks of "
                        "different widths?", _all_pairs(at_seed0)))
    depth_models = [replace(base, depth=d) for d in p["depths"]]
    specs.extend(depth_models)
    groups.append(Group("depth", "different depths, seed 0", "How alike are the layers at the "
                        "same relative depth of networks of different depths?",
                        _all_pairs(depth_models)))
    families: dict[str, list[ModelSpec]] = {}
    for fam, w in p["arch"].items():
        families[fam] = seeds(replace(base, family=fam, width=w, depth=3 if fam == "mlp" else 2),
                              p["arch_seeds"])
        groups.append(Group("architecture", f"{fam}, different seeds", "How alike are seeds "
                            "within one architecture?", _all_pairs(families[fam])))
    cross = tuple((a.name, b.name, a.name, b.name) for f1, f2 in itertools.combinations(
        families, 2) for a in families[f1] for b in families[f2])
    groups.append(Group("architecture", "different architectures (MLP, CNN, Mixer)",
                        "How alike are networks of different architectures?", cross))
    sup = seeds(base, p["objective_seeds"])
    auto = seeds(replace(base, family="autoencoder"), p["objective_seeds"])
    groups.append(Group("objective", "autoencoders, different seeds", "How alike are seeds "
                        "of the autoencoder?", _all_pairs(auto)))
    groups.append(Group("objective", "supervised vs autoencoder", "How alike are networks "
                        "trained with different objectives?",
                        tuple((a.name, b.name, a.name, b.name) for a in sup for b in auto)))
    variants = {v: seeds(replace(base, data=v), p["data_seeds"])
                for v in ("full", "half0", "half1", "noise20")}
    for name, (u, v) in {"disjoint halves of the training set, same seed": ("half0", "half1"),
                         "clean vs 20 % noisy labels, same seed": ("full", "noise20")}.items():
        groups.append(Group("data", name, "How alike are networks trained on different "
                            "data from the same initial weights?",
                            tuple((a.name, b.name, f"seed{a.seed}", f"seed{a.seed}")
                                  for a, b in zip(variants[u], variants[v]))))
    for frac in (f for f in p["time"] if f < p["epochs"]):  # never the final model itself
        pairs = []
        for s in range(p["time_seeds"]):
            ck, final = replace(base, seed=s, epochs=float(frac)), replace(base, seed=s)
            specs.extend([ck, final])
            pairs.append((ck.name, final.name, f"seed{s}", f"seed{s}"))
        unit = "epoch" if frac == 1 else "epochs"
        groups.append(Group("time", f"checkpoint at {frac:g} {unit} vs the final model",
                            "How far is a checkpoint from the final model of its run?",
                            tuple(pairs), level=float(frac)))
    unique = list({s.name: s for s in specs}.values())
    return unique, groups


def _lm_groups(p: dict[str, Any]) -> tuple[list[LMSpec], list[Group]]:
    cfg = p["lm"]
    base = LMSpec(corpus=cfg["corpus"], vocab_size=cfg["vocab_size"], layers=cfg["layers"],
                  heads=cfg["heads"], context=cfg["context"], tokens=cfg["tokens"],
                  batch_size=cfg["batch_size"])
    specs = [replace(base, width=w, seed=s) for w in cfg["widths"] for s in range(cfg["seeds"])]
    groups = []
    for w in cfg["widths"]:
        ms = [s for s in specs if s.width == w]
        groups.append(Group("language models", f"width {w}, different seeds", "How alike are "
                            "tiny language models that differ only in their seed?",
                            _all_pairs(ms, by_seed=True), level=float(w), kind="lm"))
    cross = [(a, b) for a, b in itertools.combinations(specs, 2) if a.width != b.width]
    groups.append(Group("language models", "different widths", "How alike are tiny language "
                        "models of different widths?",
                        tuple((a.name, b.name, a.name, b.name) for a, b in cross), kind="lm"))
    return specs, groups


def plan(preset: str = "quick") -> FindingsPlan:
    """The models and groups of pairs of ``preset`` (``quick``, ``full`` or ``test``)."""
    try:
        p = PLANS[preset]
    except KeyError:
        raise InvalidParameterError(f"unknown preset {preset!r}; choose one of "
                                    f"{', '.join(PLANS)}") from None
    base = ModelSpec(width=p["base_width"], epochs=p["epochs"], n_train=p["n_train"])
    images, groups = _image_groups(p, base)
    lms, lm_groups = _lm_groups(p)
    return FindingsPlan(preset, dict(p), images, lms, groups + lm_groups)
