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
    hf = "all-MiniLM-L6-v2"   # a repscope.extract.pretrained name or a local HF folder
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
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repscope.core.errors import RepscopeError
from repscope.inference.options import CI_METHODS, DEFAULT_CI_METHOD

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["StudySpecError", "ModelSpec", "StudySpec", "load_study", "parse_study"]


class StudySpecError(RepscopeError):
    """The study file is missing, malformed, or names unknown things."""


DATASET_KINDS = ("digits", "sentences", "npy", "none")
POOLINGS = ("mean", "last", "first", "cls")


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


def _take(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise StudySpecError(
            f"[{where}]: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _model(raw: dict[str, Any], base: Path, i: int) -> ModelSpec:
    where = f"models[{i}]"
    _take(raw, {"name", "factory", "kwargs", "hf", "pooling", "layers", "activations",
                "batch_size"}, where)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise StudySpecError(f"[{where}] needs a non-empty `name`")
    kinds = [k for k in ("factory", "hf", "activations") if k in raw]
    if len(kinds) != 1:
        raise StudySpecError(
            f"model {name!r} must have exactly one of `factory`, `hf` or `activations` "
            f"(found: {', '.join(kinds) or 'none'})"
        )
    kind = {"factory": "torch", "hf": "hf", "activations": "activations"}[kinds[0]]
    layers = raw.get("layers", "all")
    if kind == "torch" and (layers == "all" or not layers):
        raise StudySpecError(
            f"model {name!r}: list the module names to extract in `layers` "
            "(repscope.extract.list_layers(model) shows them)"
        )
    if not (layers == "all" or (isinstance(layers, list) and all(isinstance(x, (str, int))
                                                                  for x in layers))):
        raise StudySpecError(f"model {name!r}: `layers` must be \"all\" or a list of names")
    pooling = raw.get("pooling", "mean")
    if pooling not in POOLINGS:
        raise StudySpecError(f"model {name!r}: pooling must be one of {POOLINGS}, got {pooling!r}")
    acts: dict[str, Path] = {}
    if kind == "activations":
        if not isinstance(raw["activations"], dict) or not raw["activations"]:
            raise StudySpecError(f"model {name!r}: `activations` maps layer names to .npy files")
        for layer, p in raw["activations"].items():
            path = (base / str(p)).resolve()
            if not path.exists():
                raise StudySpecError(f"model {name!r}, layer {layer!r}: file not found: {path}")
            acts[str(layer)] = path
        layers = list(acts)
    if kind == "torch" and (not isinstance(raw["factory"], str) or ":" not in raw["factory"]):
        raise StudySpecError(f"model {name!r}: factory must be \"package.module:function\"")
    return ModelSpec(
        name=name,
        kind=kind,
        layers=layers if layers == "all" else tuple(str(x) for x in layers),
        factory=raw.get("factory"),
        kwargs=dict(raw.get("kwargs", {})),
        hf=raw.get("hf"),
        pooling=pooling,
        activations=acts,
        batch_size=int(raw.get("batch_size", 64)),
    )


def parse_study(data: dict[str, Any], base: Path, path: Path | None = None) -> StudySpec:
    """Validate a parsed TOML document (``base`` resolves relative paths)."""
    from repscope.measures.registry import measure

    _take(data, {"study", "dataset", "models", "compare", "stats", "functional", "report"},
          "top level")
    study = data.get("study", {})
    _take(study, {"name"}, "study")
    ds = dict(data.get("dataset", {"kind": "none"}))
    _take(ds, {"kind", "split", "n", "path", "labels", "seed"}, "dataset")
    if ds.get("kind", "none") not in DATASET_KINDS:
        raise StudySpecError(
            f"[dataset] kind must be one of {DATASET_KINDS}, got {ds.get('kind')!r}"
        )
    ds.setdefault("kind", "none")
    for key in ("path", "labels"):
        if key in ds:
            ds[key] = (base / str(ds[key])).resolve()
            if not ds[key].exists():
                raise StudySpecError(f"[dataset] {key}: file not found: {ds[key]}")
    if ds["kind"] == "npy" and "path" not in ds:
        raise StudySpecError("[dataset] kind = \"npy\" needs `path` to an .npy array of inputs")
    raw_models = data.get("models", [])
    if not isinstance(raw_models, list) or len(raw_models) < 1:
        raise StudySpecError("a study needs at least one [[models]] table")
    models = tuple(_model(m, base, i) for i, m in enumerate(raw_models))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise StudySpecError(f"model names must be unique, got {names}")
    if ds["kind"] == "none" and any(m.kind != "activations" for m in models):
        raise StudySpecError("models that must be run need a [dataset] (digits, sentences, npy)")
    cmp = data.get("compare", {})
    _take(cmp, {"measures", "pairs", "profile", "fitted"}, "compare")
    if cmp.get("fitted", "heldout") not in ("heldout", "in_sample"):
        raise StudySpecError("[compare] fitted must be heldout or in_sample")
    measures = tuple(cmp.get("measures", ["cka", "procrustes", "mean_cca"]))
    for m in measures:  # fail early on unknown names or parameters
        if not (isinstance(m, str) or (isinstance(m, dict) and "name" in m)):
            raise StudySpecError(
                f"[compare] measures entries are names or {{name=…}} tables: {m!r}"
            )
        try:
            if isinstance(m, str):
                measure(m)
            else:
                measure(m["name"], **{k: v for k, v in m.items() if k != "name"})
        except RepscopeError as e:
            raise StudySpecError(f"[compare] measures: {e}") from e
    if cmp.get("pairs", "cross") not in ("cross", "within", "all"):
        raise StudySpecError("[compare] pairs must be cross, within or all")
    st = data.get("stats", {})
    _take(st, {"permutations", "bootstrap", "seed", "measures", "ci", "adjust", "q",
               "max_permutations"}, "stats")
    if st.get("ci", DEFAULT_CI_METHOD) not in CI_METHODS:
        raise StudySpecError(f"[stats] ci must be one of {', '.join(CI_METHODS)}")
    if st.get("adjust", "bh") not in ("bh", "holm"):
        raise StudySpecError("[stats] adjust must be bh or holm")
    q = st.get("q", 0.05)
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1:
        raise StudySpecError(f"[stats] q must be a number in (0, 1), got {q!r}")
    max_perm = st.get("max_permutations", 10_000)
    if isinstance(max_perm, bool) or not isinstance(max_perm, int) or max_perm < 1:
        raise StudySpecError(f"[stats] max_permutations must be a positive integer, got "
                             f"{max_perm!r}")
    fn = data.get("functional", {})
    _take(fn, {"probes", "stitching"}, "functional")
    rp = data.get("report", {})
    _take(rp, {"primary_measure", "title"}, "report")
    return StudySpec(
        name=str(study.get("name", path.stem if path else "study")),
        path=path,
        dataset=ds,
        models=models,
        measures=measures,
        pairs=cmp.get("pairs", "cross"),
        profile=bool(cmp.get("profile", True)),
        permutations=int(st.get("permutations", 0)),
        bootstrap=int(st.get("bootstrap", 0)),
        seed=int(st.get("seed", 0)),
        ci_method=str(st.get("ci", DEFAULT_CI_METHOD)),
        stats_measures=tuple(st["measures"]) if "measures" in st else None,  # names or tables
        probes=bool(fn.get("probes", False)),
        stitching=bool(fn.get("stitching", False)),
        primary_measure=rp.get("primary_measure"),
        title=rp.get("title"),
        fitted=cmp.get("fitted", "heldout"),
        adjust=st.get("adjust", "bh"),
        q=float(q),
        max_permutations=max_perm,
    )


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study TOML file."""
    p = Path(path)
    if not p.exists():
        raise StudySpecError(f"study file not found: {p}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise StudySpecError(f"{p}: invalid TOML: {e}") from e
    return parse_study(data, p.parent.resolve(), p.resolve())
