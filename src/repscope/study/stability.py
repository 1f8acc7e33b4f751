"""How stable each best match of a study is: ``extras["match_stability"]``.

For every pair of models (the pairs of the best-match tables and profiles)
and the primary measure, :func:`match_stability_extras` runs
:func:`repscope.inference.match_stability.match_stability_pairs` — each layer of
A's best-matching layer of B and how often it stays the best over
``[report] stability_resamples`` bootstrap resamples of the inputs — and returns
one JSON entry per pair::

    {"model_a": "m1", "model_b": "m2", "measure": "cka", "n_resamples": 50,
     "level": 0.95, "seed": 0, "dataset": "digits-test-seed0-n539", "skipped": None,
     "records": [LayerMatch.to_record(), ...]}

``skipped`` is ``None``, or why nothing was computed (a fitted primary measure;
``records`` is then empty).  Entries of an earlier run with the same measure,
number of resamples, seed and dataset are kept, not recomputed.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from repscope.core.errors import DegeneracyWarning
from repscope.core.threads import single_threaded
from repscope.measures.registry import measure_info
from repscope.study.schema import measure_label, measure_name
from repscope.study.spec import StudySpec

__all__ = ["STABILITY_KEYS", "match_stability_extras", "primary_entry"]

#: the fields that identify an entry of ``extras["match_stability"]`` (resuming, merging)
STABILITY_KEYS = ("model_a", "model_b", "measure")

#: level of the Wilson intervals of the stabilities
LEVEL = 0.95


def primary_entry(spec: StudySpec, primary: str) -> Any | None:
    """The ``[compare] measures`` entry that ``primary`` names, or ``None``.

    ``primary`` is a label in the report's notation (``"cka[kernel=rbf]"``): the
    entry with that label is chosen.  A bare name means the measure with its
    default parameters where the study lists it so, else its first entry.
    """
    for entry in spec.measures:
        if measure_label(entry) == primary:
            return entry
    named = [e for e in spec.measures if measure_name(e) == primary]
    for entry in named:
        params = {} if isinstance(entry, str) else {k: v for k, v in entry.items()
                                                    if k != "name"}
        defaults = measure_info(primary).params
        if all(defaults.get(k, object()) == v for k, v in params.items()):
            return entry
    return named[0] if named else None


def _spec_of(entry: Any) -> Any:
    return entry if isinstance(entry, str) else (
        entry["name"], {k: v for k, v in entry.items() if k != "name"})


def match_stability_extras(spec: StudySpec, reps: Mapping[tuple[str, str], Any],
                           layers: Mapping[str, Sequence[str]], primary: str,
                           known: Sequence[Mapping[str, Any]], dataset: str,
                           say: Callable[[str], None], progress: bool = False
                           ) -> list[dict[str, Any]]:
    """The ``extras["match_stability"]`` entries of one study (module docstring).

    Parameters
    ----------
    spec : the study; ``spec.stability_resamples`` resamples (0: returns ``[]``).
    reps : ``{(model, layer): array}``.
    layers : each model's layers, in the report's order.
    primary : the primary measure's name (the report's best-match tables).
    known : entries of an earlier run (kept where their settings match).
    dataset : the dataset id the entries belong to.
    say : progress messages.
    """
    from repscope.inference.match_stability import match_stability_pairs, stability_refusal

    r = spec.stability_resamples
    models = [m.name for m in spec.models]
    if r <= 0 or len(models) < 2 or spec.pairs == "within":
        return []
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    settings = {"measure": primary, "n_resamples": r, "level": LEVEL, "seed": spec.seed,
                "dataset": dataset}
    old = {tuple(e.get(k) for k in STABILITY_KEYS): e for e in known}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for a, b in pairs:
        prev = old.get((a, b, primary))
        if prev is not None and all(prev.get(k) == v for k, v in settings.items()) \
                and prev.get("skipped") is None:
            out[(a, b)] = dict(prev)
    todo = [p for p in pairs if p not in out]
    entry = primary_entry(spec, primary)
    reason = ("the primary measure is not among the compared measures" if entry is None
              else stability_refusal(_spec_of(entry)))
    if todo and reason is not None:
        say(f"best-match stability skipped: {reason}")
        out.update({p: {"model_a": p[0], "model_b": p[1], **settings, "skipped": reason,
                        "records": []} for p in todo})
    elif todo:
        say(f"best-match stability under {primary} ({r} resamples of the inputs): "
            + ", ".join(f"{a} → {b}" for a, b in todo))
        used = dict.fromkeys(m for p in todo for m in p)
        arrays = {m: {layer: np.asarray(reps[(m, layer)]) for layer in layers[m]} for m in used}
        small = sum(x.size for v in arrays.values() for x in v.values()) < 20_000_000
        with warnings.catch_warnings(), single_threaded(small):
            warnings.simplefilter("ignore", DegeneracyWarning)
            res = match_stability_pairs(arrays, todo, _spec_of(entry), n_resamples=r,
                                        seed=spec.seed, level=LEVEL, progress=progress)
        for (a, b), st in res.items():
            out[(a, b)] = {"model_a": a, "model_b": b, **settings, "skipped": None,
                           "records": st.to_records()}
    return [out[p] for p in pairs]
