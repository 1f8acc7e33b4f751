"""Study specification: a TOML file naming models, data, layers, measures and statistics.

Example (``examples/digits_study.toml``)::

    [study]
    name = "digits: two seeds, two widths"

    [dataset]
    kind = "digits"          # digits | sentences | npy | none
    split = "test"
    n = 400

    [[models]]
    name = "mlp64-seed0"
    factory = "repscope.zoo.digits:pretrained"     # "module:function" -> torch.nn.Module
    kwargs = { widths = [64, 64, 64], seed = 0 }
    layers = ["layer1", "layer2", "layer3", "logits"]

    [[models]]
    name = "minilm"
    hf = "all-MiniLM-L6-v2"   # a built-in name, an id in the HF cache or a local HF folder
    pooling = "mean"          # mean | last | first | cls
    layers = "all"

    [[models]]
    name = "saved"
    activations = { layer1 = "a_layer1.npy" }   # paths relative to this file

    [compare]
    measures = ["cka", "procrustes", { name = "cka", kernel = "rbf" }]
    pairs = "cross"          # cross | within | all
    profile = true
    fitted = "heldout"       # fitted measures (CCA family, regression): heldout | in_sample

    [stats]
    permutations = 200       # 0 = off
    bootstrap = 200          # 0 = off
    seed = 0
    measures = ["cka"]       # which measures get statistics (default: all)
    ci = "jackknife"         # interval: jackknife (default) | percentile | bca | normal
    adjust = "bh"            # p-values adjusted within each figure: bh (default) | holm
    q = 0.05                 # level of the adjustment
    max_permutations = 10000 # budget when the permutations rise for a figure's family

    [functional]
    probes = true            # needs labels (digits has them)
    stitching = true         # torch models with the same task

    [report]
    primary_measure = "cka"
    stability_resamples = 50 # resamples for how stable each best match is (0 = off)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from repscope.core.errors import RepscopeError
from repscope.inference.options import DEFAULT_CI_METHOD
from repscope.study.schema import ModelTable, StudyFile, primary_label
from repscope.study.spec_errors import describe_errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["StudySpecError", "ModelSpec", "StudySpec", "load_study", "parse_study"]


class StudySpecError(RepscopeError):
    """The study file is missing, malformed, or names unknown things."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of a study: a torch factory, a Hugging Face model, or saved activations."""

    name: str
    kind: str  # "torch" | "hf" | "activations"
    layers: tuple[str, ...] | str
    factory: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    hf: str | None = None
    pooling: str = "mean"
    activations: dict[str, Path] = field(default_factory=dict)
    batch_size: int = 64


@dataclass(frozen=True)
class StudySpec:
    """A validated study: what :func:`repscope.study.run_study` runs (paths resolved)."""

    name: str
    path: Path | None
    dataset: dict[str, Any]
    models: tuple[ModelSpec, ...]
    measures: tuple[Any, ...]
    pairs: str = "cross"
    profile: bool = True
    permutations: int = 0
    bootstrap: int = 0
    seed: int = 0
    ci_method: str = DEFAULT_CI_METHOD
    stats_measures: tuple[Any, ...] | None = None
    probes: bool = False
    stitching: bool = False
    primary_measure: str | None = None
    title: str | None = None
    fitted: str = "heldout"
    adjust: str = "bh"
    q: float = 0.05
    max_permutations: int = 10_000
    stability_resamples: int = 50
    memory: str | int | None = None


def _model(m: ModelTable, base: Path) -> ModelSpec:
    acts = {layer: (base / file).resolve() for layer, file in (m.activations or {}).items()}
    layers: tuple[str, ...] | str
    if m.kind == "activations":
        layers = tuple(acts)
    elif m.layers in (None, "all"):
        layers = "all"
    else:
        # hidden-state indices of hf models stay integers (1 is "hidden.1"); module names
        # of torch models are strings ("0" names the first module of an nn.Sequential)
        layers = tuple(x if m.kind == "hf" and isinstance(x, int) else str(x)
                       for x in m.layers)
    return ModelSpec(name=m.name, kind=m.kind, layers=layers, factory=m.factory,
                     kwargs=dict(m.kwargs or {}), hf=m.hf, pooling=m.pooling or "mean",
                     activations=acts, batch_size=m.batch_size or 64)


def parse_study(data: Any, base: Path, path: Path | None = None) -> StudySpec:
    """Validate a parsed TOML document against the schema (``base`` resolves relative paths).

    Raises
    ------
    StudySpecError
        With every problem found (wrong types, sizes, unknown keys or names) on one line.
    """
    if not isinstance(data, dict):
        raise StudySpecError(f"a study is a TOML document (a table), got {type(data).__name__}")
    base = Path(base)
    try:
        doc = StudyFile.model_validate(data, context={"base": base})
    except ValidationError as exc:
        raise StudySpecError(describe_errors(exc, data, str(path) if path else "")) from None
    ds = doc.dataset.model_dump(exclude_none=True)
    for key in ("path", "labels"):
        if key in ds:
            ds[key] = (base / ds[key]).resolve()
    cmp, st, rp = doc.compare, doc.stats, doc.report
    return StudySpec(
        name=doc.study.name or (path.stem if path else "study"),
        path=path,
        dataset=ds,
        models=tuple(_model(m, base) for m in doc.models),
        measures=tuple(cmp.measures),
        pairs=cmp.pairs,
        profile=cmp.profile,
        permutations=st.permutations,
        bootstrap=st.bootstrap,
        seed=st.seed,
        ci_method=st.ci,
        stats_measures=None if st.measures is None else tuple(st.measures),
        probes=doc.functional.probes,
        stitching=doc.functional.stitching,
        primary_measure=(None if rp.primary_measure is None
                         else primary_label(rp.primary_measure, list(cmp.measures))),
        title=rp.title,
        fitted=cmp.fitted,
        adjust=st.adjust,
        q=float(st.q),
        max_permutations=st.max_permutations,
        stability_resamples=rp.stability_resamples,
        memory=cmp.memory,
    )


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study TOML file (nothing in it runs: see :mod:`repscope.study.trust`)."""
    p = Path(path)
    if not p.is_file():
        raise StudySpecError(f"study file not found: {p}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise StudySpecError(f"{p}: invalid TOML: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise StudySpecError(f"{p}: cannot read the study file: {e}") from e
    return parse_study(data, p.parent.resolve(), p.resolve())
