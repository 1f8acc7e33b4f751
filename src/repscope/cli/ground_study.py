"""``repscope ground study.toml``: the grounding tests on a study's own models.

:func:`zoo_from_study` extracts (or reuses) the study's activations as
``repscope run`` does, and builds a :class:`~repscope.grounding.zoo.GroundingZoo`
of the largest set of models that share the same layers (by name, in order);
other models are left out with the reason.  What each test needs, and so
which tests run:

* layer identification: ≥ 2 models with the same layers;
* the ReSi correlations (tests 1–2): ≥ 4 such models, their outputs (a layer
  named ``logits``, or the torch model run on the inputs) and the dataset's labels;
* sensitivity and specificity: models that run from a layer
  (``forward_from(layer, activations)``), their outputs and the labels;
* group separation (tests 3–5): groups declared by the caller (``groups``:
  test → {model → group label}); skipped otherwise;
* monotonicity: ≥ 3 layers of any model.

A test that does not apply is skipped with its reason
(:attr:`~repscope.grounding.benchmark.GroundingResult.skipped`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError
from repscope.grounding.zoo import GroundingZoo, zoo_from_arrays

__all__ = ["zoo_from_study"]


def _outputs(model: Any, inputs: Any) -> np.ndarray | None:
    try:
        import torch
    except ImportError:
        return None
    with torch.no_grad():
        out = model(torch.as_tensor(np.asarray(inputs, dtype=np.float32)))
    return np.asarray(out.numpy(), dtype=np.float64)


def zoo_from_study(path: str | Path, out: str | Path, *, trust: Any = None,
                   groups: dict[str, dict[str, str]] | None = None,
                   progress: bool = False) -> tuple[GroundingZoo, dict[str, str]]:
    """The study's models as a grounding zoo, and the models left out (name → why)."""
    from repscope.study import load_study
    from repscope.study.datasets import load_study_data
    from repscope.study.runner import build_representations
    from repscope.study.trust import Trust

    spec = load_study(path)
    policy = Trust.of(trust)
    policy.check([spec])
    data = load_study_data(spec.dataset)
    reps, torch_models = build_representations(spec, data, Path(out), progress, policy)
    layers_of: dict[str, list[str]] = {}
    for model, layer in reps:
        layers_of.setdefault(model, []).append(layer)
    by_layers: dict[tuple[str, ...], list[str]] = {}
    for model, layers in layers_of.items():
        by_layers.setdefault(tuple(layers), []).append(model)
    chosen_layers, chosen = max(by_layers.items(), key=lambda kv: (len(kv[1]), len(kv[0])))
    left_out = {m: f"its layers {layers_of[m]} differ from {list(chosen_layers)}"
                for m in layers_of if m not in chosen}
    arrays = {m: {la: np.asarray(reps[(m, la)], dtype=np.float64) for la in chosen_layers}
              for m in chosen}
    labels = None if data.labels is None else np.asarray(data.labels)
    logits: dict[str, np.ndarray] = {}
    if labels is not None:
        for m in chosen:
            if "logits" in arrays[m]:
                logits[m] = arrays[m]["logits"]
            elif m in torch_models and not isinstance(data.inputs, list):
                out_m = _outputs(torch_models[m], data.inputs)
                if out_m is not None:
                    logits[m] = out_m
    networks = {m: torch_models[m] for m in chosen if m in torch_models
                and hasattr(torch_models[m], "forward_from") and m in logits}
    group_reps: dict[str, np.ndarray] = {}
    for test, members in (groups or {}).items():
        last = chosen_layers[-2] if len(chosen_layers) >= 2 else chosen_layers[-1]
        for m in members:
            if m not in layers_of:
                raise InvalidParameterError(f"groups for {test}: {m!r} is not a model of "
                                            f"{path}")
            if m not in arrays:
                if (m, last) not in reps:
                    raise InvalidParameterError(f"groups for {test}: model {m!r} has no "
                                                f"layer {last!r} (the group tests compare it)")
                group_reps[m] = np.asarray(reps[(m, last)], dtype=np.float64)
    zoo = zoo_from_arrays(arrays, logits, labels if labels is not None else
                          np.zeros(data.n, dtype=np.int64), networks,
                          f"{len(chosen)} models of study {spec.name!r} ({data.n} inputs, "
                          f"layers {', '.join(chosen_layers)})", groups, group_reps)
    zoo.has_labels = labels is not None
    return zoo, left_out
