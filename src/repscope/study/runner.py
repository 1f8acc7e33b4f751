"""Run a study: extract → compare → functional analyses → report, incrementally.

Everything lands in one output folder::

    OUT/activations/     Zarr activation store (reused when provenance matches)
    OUT/results.sqlite   one row per pair × measure × options (resumable)
    OUT/extras.json      probes, stitching matrices, invariance profiles, best-match
                         stability, findings
    OUT/report.html      the self-contained report

    OUT/.repscope.lock   held while a run works in the folder (one run at a time)

Re-running skips finished work: activations whose provenance matches (weights
and data hashes, layer, pooling, dtype, extractor version) are a cache hit and
are not re-extracted, result rows already in the database are not recomputed,
and profiles and best-match stabilities already in ``extras.json`` are kept.  A
factory is imported only if it is registered or trusted
(:mod:`repscope.study.trust`), checked before anything runs.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import DegeneracyWarning, RepscopeError
from repscope.core.progress import show_progress
from repscope.core.threads import single_threaded
from repscope.storage.results_db import json_default
from repscope.study.datasets import StudyData, load_npy, load_study_data
from repscope.study.folder_lock import FolderLock
from repscope.study.schema import canonical_measure, measure_label
from repscope.study.spec import ModelSpec, StudySpec, StudySpecError
from repscope.study.stability import STABILITY_KEYS, match_stability_extras
from repscope.study.trust import Trust

__all__ = ["StudyOutcome", "run_study", "run_studies", "load_extras", "save_extras"]


@dataclass
class StudyOutcome:
    out: Path
    db_path: Path
    report_path: Path | None
    n_rows: int
    extras: dict[str, Any] = field(default_factory=dict)


def _say(progress: bool, msg: str) -> None:
    if progress:
        from rich.console import Console

        Console(stderr=True).print(f"[bold blue]repscope[/] {msg}")


def _import_factory(path: str, model: str, trust: Trust) -> Callable[..., Any]:
    """Import a factory the caller trusts (checked before the import)."""
    trust.require(path, model)
    module, _, fn = path.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise StudySpecError(f"cannot import factory module {module!r}: {e}") from e
    if not hasattr(mod, fn):
        raise StudySpecError(f"module {module!r} has no factory {fn!r}")
    return getattr(mod, fn)


# ------------------------------------------------------------ extraction
def _extract_model(m: ModelSpec, data: StudyData, store: Any, progress: bool,
                   trust: Trust) -> tuple[dict, Any]:
    from repscope.extract import extract_hf, extract_torch

    if m.kind == "activations":
        reps = {}
        for layer, path in m.activations.items():
            arr = load_npy(path, f"model {m.name!r}, layer {layer!r}", mmap=True)
            if data.n and arr.shape[0] != data.n:
                raise StudySpecError(
                    f"model {m.name!r}, layer {layer!r}: {arr.shape[0]} rows but the dataset has "
                    f"{data.n} inputs"
                )
            reps[layer] = arr
        return reps, None
    if m.kind == "torch":
        model = _import_factory(str(m.factory), m.name, trust)(**m.kwargs)
        acts = extract_torch(model, np.asarray(data.inputs), list(m.layers),
                             batch_size=m.batch_size, store=store, model_id=m.name,
                             dataset_id=data.dataset_id, progress=progress)
        return {layer: acts[layer] for layer in acts}, model
    # Hugging Face: a built-in name, a model id in the local Hugging Face cache, or a folder
    from repscope.extract import load_model

    if not isinstance(data.inputs, list):
        raise StudySpecError(f"model {m.name!r} is a text model; use a sentences dataset")
    model, tok = load_model(str(m.hf))
    layers = None if m.layers == "all" else list(m.layers)
    acts = extract_hf(model, tok, data.inputs, layers=layers, pooling=m.pooling,
                      batch_size=m.batch_size, store=store, model_id=m.name,
                      dataset_id=data.dataset_id, progress=progress)
    return {layer: acts[layer] for layer in acts}, None


def build_representations(spec: StudySpec, data: StudyData, out: Path, progress: bool,
                          trust: Trust | None = None
                          ) -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """Extract (or reuse) every model's layers; returns representations and torch models.

    Activations already in ``out/activations`` with the same provenance (weights and
    data hashes, layer, pooling, dtype, extractor version) are reused, not recomputed.
    """
    from repscope.storage.activation_store import ActivationStore, EntryExistsError

    store = ActivationStore(out / "activations")
    reps: dict[tuple[str, str], Any] = {}
    torch_models: dict[str, Any] = {}
    for m in spec.models:
        _say(progress, f"extracting {m.name} ({m.kind})")
        try:
            layers, model = _extract_model(m, data, store, progress, Trust.of(trust))
        except EntryExistsError as exc:
            raise StudySpecError(
                f"model {m.name!r}: {out} holds activations of a different {m.name!r} ({exc}); "
                "its results would be mixed with the new ones. Use another --out folder, or "
                "rename the model"
            ) from exc
        for layer, arr in layers.items():
            reps[(m.name, str(layer))] = arr
        if model is not None:
            torch_models[m.name] = model
    return reps, torch_models


# ------------------------------------------------------------ comparisons
def _grid_measures(measures: Sequence[Any]) -> list[Any]:
    return [m if isinstance(m, str) else (m["name"], {k: v for k, v in m.items() if k != "name"})
            for m in measures]


def compare_study(spec: StudySpec, reps: dict, db: Any, dataset_id: str, progress: bool) -> None:
    from repscope.engine.grid import grid
    from repscope.inference.options import Stats

    chosen = spec.measures if spec.stats_measures is None else spec.stats_measures
    stat_keys = {canonical_measure(m) for m in chosen}
    with_stats = [m for m in spec.measures if canonical_measure(m) in stat_keys]
    plain = [m for m in spec.measures if canonical_measure(m) not in stat_keys]
    stats = Stats(n_permutations=spec.permutations, n_boot=spec.bootstrap,
                  ci_method=spec.ci_method, adjust=spec.adjust, q=spec.q,
                  max_permutations=spec.max_permutations)
    if not stats.any:
        plain, with_stats = list(spec.measures), []
    # Small problems run faster on one BLAS thread (no spinning threads on a busy machine).
    small = all(int(np.prod(getattr(a, "shape", (0,)))) <= 2_000_000 for a in reps.values())
    with warnings.catch_warnings(), single_threaded(small):
        warnings.simplefilter("ignore", DegeneracyWarning)  # recorded per row by grid
        if with_stats:
            names = ", ".join(map(measure_label, with_stats))
            _say(progress, f"comparing with statistics: {names}")
            grid(reps, measures=_grid_measures(with_stats), stats=stats, pairs=spec.pairs, db=db,
                 dataset=dataset_id, seed=spec.seed, progress=progress, fitted=spec.fitted,
                 memory=spec.memory)
        if plain:
            _say(progress, f"comparing: {', '.join(map(measure_label, plain))}")
            grid(reps, measures=_grid_measures(plain), pairs=spec.pairs, db=db,
                 dataset=dataset_id, seed=spec.seed, progress=progress, fitted=spec.fitted,
                 memory=spec.memory)


# ------------------------------------------------------- functional + profiles
def _model_layers(reps: dict, model: str) -> list[str]:
    from repscope.views.analysis import natural_key

    return sorted({layer for (m, layer) in reps if m == model}, key=natural_key)


def functional_analyses(spec: StudySpec, data: StudyData, reps: dict, torch_models: dict,
                        progress: bool) -> dict[str, Any]:
    """Probes, model accuracies and stitching matrices (single-threaded: small models)."""
    with single_threaded():
        return _functional(spec, data, reps, torch_models, progress)


def _functional(spec: StudySpec, data: StudyData, reps: dict, torch_models: dict,
                progress: bool) -> dict[str, Any]:
    from repscope.probing.probes import probe_agreement, probe_grid
    from repscope.probing.stitching import stitching_matrix
    from repscope.zoo.digits import accuracy

    extras: dict[str, Any] = {}
    if spec.probes and data.labels is not None:
        _say(progress, "fitting linear probes")
        res = probe_grid({k: np.asarray(v) for k, v in reps.items()}, data.labels,
                         seed=spec.seed)
        extras["probes"] = [{"model": m, "layer": layer, **r.to_record(),
                             "dataset": data.dataset_id} for (m, layer), r in res.items()]
        names = [m.name for m in spec.models]
        if len(names) >= 2:  # functional agreement of two models' probes, layer by layer
            a, b = names[0], names[1]
            la, lb = _model_layers(reps, a), _model_layers(reps, b)
            mat = [[probe_agreement(res[(a, x)], res[(b, y)]) for y in lb] for x in la]
            extras["probe_agreement"] = [{"model_a": a, "model_b": b, "layers_a": la,
                                          "layers_b": lb, "matrix": mat}]
    if torch_models and data.labels is not None:
        extras["accuracies"] = {
            name: accuracy(model, np.asarray(data.inputs), data.labels)
            for name, model in torch_models.items()
        }
    if spec.stitching and len(torch_models) >= 2 and data.train_inputs is not None:
        names = list(torch_models)
        extras["stitching"] = []
        for b in names[1:3]:
            a = names[0]
            _say(progress, f"stitching {a} → {b}")
            la = [x for x in _model_layers(reps, a) if x != "logits"]
            lb = [x for x in _model_layers(reps, b) if x != "logits"]
            mat = stitching_matrix(torch_models[a], la, torch_models[b], lb, data.train_inputs,
                                   data.train_labels, np.asarray(data.inputs), data.labels)
            extras["stitching"].append({"model_a": a, "model_b": b, "layers_a": la,
                                        "layers_b": lb, "matrix": mat.tolist()})
    return extras


def best_match_profiles(spec: StudySpec, reps: dict, results: Any, primary: str,
                        known: dict[tuple, dict], progress: bool,
                        pairs: Sequence[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Invariance profile of each layer of A with its best-matching layer of B."""
    from repscope.inference.profile import profile
    from repscope.report.build import best_matches

    models = [m.name for m in spec.models]
    todo = pairs or [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    out = []
    for a, b in todo:
        for match in best_matches(results, primary, a, b, fitted=spec.fitted,
                                  method=spec.adjust, q=spec.q):
            key = (a, str(match["layer_a"]), b, str(match["layer_b"]))
            if key in known:
                out.append(known[key])
                continue
            x = np.asarray(reps[(a, key[1])], dtype=np.float64)
            y = np.asarray(reps[(b, key[3])], dtype=np.float64)
            with warnings.catch_warnings(), single_threaded(x.size + y.size < 4_000_000):
                warnings.simplefilter("ignore", DegeneracyWarning)
                p = profile(x, y, seed=spec.seed)
            rec = {"model_a": a, "layer_a": key[1], "model_b": b, "layer_b": key[3],
                   "sentence": p.sentence, "strongest": p.strongest, "classes": p.to_records(),
                   "shared": p.shared, "settings": p.settings}
            out.append(json.loads(json.dumps(rec, default=json_default)))
    _say(progress, f"profiled {len(out)} best-matching layer pairs")
    return out



# ---------------------------------------------------------------- extras file
def load_extras(out: Path) -> dict[str, Any]:
    """The ``extras.json`` of a study folder (``{}`` when there is none)."""
    p = Path(out) / "extras.json"
    if not p.exists():
        return {}
    try:
        extras = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RepscopeError(
            f"{p} is damaged ({type(exc).__name__}: {exc}); move it aside and re-run `repscope "
            "run` (probes, stitching and profiles are recomputed)"
        ) from exc
    if not isinstance(extras, dict):
        raise RepscopeError(f"{p} is damaged (not a JSON object); move it aside and re-run "
                            "`repscope run`")
    return extras


def save_extras(out: Path, extras: dict[str, Any]) -> None:
    p = Path(out) / "extras.json"
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".extras-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(extras, f, indent=1, default=json_default)
    os.replace(tmp, p)


def _merge_list(old: list[dict], new: list[dict], keys: Sequence[str]) -> list[dict]:
    index = {tuple(d.get(k) for k in keys): d for d in old}
    for d in new:
        index[tuple(d.get(k) for k in keys)] = d
    return list(index.values())


def merge_extras(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    keys = {"probes": ("model", "layer", "dataset"),
            "stitching": ("model_a", "model_b"),
            "probe_agreement": ("model_a", "model_b"),
            "profiles": ("model_a", "layer_a", "model_b", "layer_b"),
            "match_stability": STABILITY_KEYS}
    for name, value in new.items():
        if name in keys and isinstance(value, list):
            merged[name] = _merge_list(merged.get(name, []), value, keys[name])
        elif name == "accuracies":
            merged[name] = {**merged.get(name, {}), **value}
        elif name == "findings":
            merged[name] = list(dict.fromkeys(merged.get(name, []) + list(value)))
        else:
            merged[name] = value
    return merged


# ---------------------------------------------------------------------- run
def run_study(spec: StudySpec, out: str | Path | None = None, *, progress: bool | None = None,
              report: bool = True, trust: Trust | str | Sequence[str] | None = None
              ) -> StudyOutcome:
    """Run one study into ``out`` (default ``repscope-out/<study name>``).

    ``trust`` names the modules (or ``module:function`` factories) whose code the
    study may run beyond the registered factories (:mod:`repscope.study.trust`);
    a trusted factory runs code like a script.  ``progress``: status lines and progress
    bars on stderr; ``None`` (default): when the session is interactive (stderr is a
    terminal, or IPython/Jupyter).
    """
    return run_studies([spec], out or Path("repscope-out") / _slug(spec.name),
                       progress=progress, report=report, title=spec.title or spec.name,
                       trust=trust)


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s).strip("-") or "study"


def run_studies(
    specs: Sequence[StudySpec],
    out: str | Path,
    *,
    progress: bool | None = None,
    report: bool = True,
    title: str = "repscope report",
    description: str = "",
    after: Callable[[StudySpec, dict, Any, dict[str, Any]], dict[str, Any]] | None = None,
    trust: Trust | str | Sequence[str] | None = None,
) -> StudyOutcome:
    """Run several studies into one folder, database and report.

    ``after(spec, reps, results_dataframe, extras)`` may return more extras
    (e.g. findings) once a study's comparisons are done.  ``trust`` and ``progress``: see
    :func:`run_study`; every factory is checked before anything runs.  The run
    holds ``out`` for itself (:class:`~repscope.study.folder_lock.FolderLock`):
    a second run on the same folder stops with
    :class:`~repscope.study.folder_lock.FolderInUseError`.
    """
    policy = Trust.of(trust)
    policy.check(specs)  # before anything is imported, created or run
    out = Path(out)
    with FolderLock(out):
        return _run_locked(specs, out, progress=show_progress(progress), report=report, title=title,
                           description=description, after=after, trust=policy)


def _run_locked(specs: Sequence[StudySpec], out: Path, *, progress: bool, report: bool,
                title: str, description: str,
                after: Callable[[StudySpec, dict, Any, dict[str, Any]], dict[str, Any]] | None,
                trust: Trust) -> StudyOutcome:
    from repscope.report import write_report
    from repscope.storage.results_db import ResultsDB

    db_path = out / "results.sqlite"
    extras = load_extras(out)
    with ResultsDB(db_path) as db:
        db.check()  # a damaged database stops the run before any work, with what to do
        for spec in specs:
            data = load_study_data(spec.dataset)
            reps, torch_models = build_representations(spec, data, out, progress, trust)
            if not reps:
                raise RepscopeError(f"study {spec.name!r} produced no representations")
            compare_study(spec, reps, db, data.dataset_id, progress)
            new = functional_analyses(spec, data, reps, torch_models, progress)
            results = db.to_pandas(dataset=data.dataset_id)
            primary = spec.primary_measure or measure_label(spec.measures[0])
            if spec.profile and len(spec.models) > 1:
                known = {(p["model_a"], p["layer_a"], p["model_b"], p["layer_b"]): p
                         for p in extras.get("profiles", [])}
                new["profiles"] = best_match_profiles(spec, reps, results, primary, known,
                                                      progress)
            new["match_stability"] = match_stability_extras(
                spec, reps, {m.name: _model_layers(reps, m.name) for m in spec.models}, primary,
                extras.get("match_stability", []), data.dataset_id,
                lambda msg: _say(progress, msg), progress)
            if after is not None:
                new = merge_extras(new, after(spec, reps, results, {**extras, **new}) or {})
            extras = merge_extras(extras, new)
            extras.setdefault("primary_measure", primary)
            extras["fitted"] = spec.fitted
            extras["multiple_testing"] = {"method": spec.adjust, "q": spec.q}
            save_extras(out, extras)
        n_rows = len(db)
        results = db.to_pandas()
    report_path = None
    if report:
        if description:
            extras["description"] = description
        report_path = write_report(out / "report.html", results, extras, title=title)
        _say(progress, f"report written to {report_path}")
    return StudyOutcome(out=out, db_path=db_path, report_path=report_path, n_rows=n_rows,
                        extras=extras)
