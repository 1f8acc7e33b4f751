"""The typed schema of study files (pydantic v2): one table class per TOML table.

Every check on a study file lives here, as a type, a constraint or a
validator: wrong types are refused (``profile = "no"`` is not true,
``measures = "cka"`` is not a list), sizes must be positive, unknown keys and
unknown measure names are errors with suggestions, and the tables are checked
against each other (``[stats] measures`` and ``[report] primary_measure`` must
name entries of ``[compare] measures``).  :mod:`repscope.study.spec` turns a
validated file into a :class:`~repscope.study.spec.StudySpec`;
:mod:`repscope.study.format_doc` writes ``docs/study-format.md`` from these
classes, so the documentation and the checks cannot drift apart.

Validation takes an optional context ``{"base": Path}``: files named in the
study are then resolved against ``base`` and must exist.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from repscope.core.errors import RepscopeError
from repscope.core.memory import parse_memory
from repscope.inference.options import CI_METHODS, DEFAULT_CI_METHOD

__all__ = [
    "CompareTable",
    "DatasetTable",
    "FunctionalTable",
    "ModelTable",
    "ReportTable",
    "StatsTable",
    "StudyFile",
    "StudyTable",
    "canonical_measure",
    "measure_label",
    "measure_name",
    "primary_label",
]

_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as it is."""
    return PydanticCustomError("study", "{message}", {"message": message})


def _show(value: Any) -> str:
    """A TOML-like rendering of a value for error messages (shortened)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------ measures
def _entry_parts(entry: Any) -> tuple[str, dict[str, Any]]:
    """(name, params) of a ``measures`` entry: ``"cka"``, ``"cka[kernel=rbf]"`` or a table."""
    from repscope.measures.spec import parse_measure

    if isinstance(entry, str):
        parsed = parse_measure(entry)
        return parsed.name, dict(parsed.params)
    return str(entry["name"]), {k: v for k, v in entry.items() if k != "name"}


def measure_name(entry: Any) -> str:
    """The measure name of a ``measures`` entry (a name, ``"name[k=v]"`` or a ``{name = …}``
    table)."""
    return _entry_parts(entry)[0]


def measure_label(entry: Any) -> str:
    """The report's label of a ``measures`` entry: ``"cka"``, ``"cka[kernel=rbf]"``
    (registered name, parameters at their defaults dropped)."""
    from repscope.measures.registry import measure_info
    from repscope.measures.spec import format_measure

    name, params = _entry_parts(entry)
    try:
        info = measure_info(name)
    except RepscopeError:
        return format_measure(name, params)
    return format_measure(info.name, params, info.params)


def canonical_measure(entry: Any) -> str:
    """The identity of an entry: ``"cka"``, ``{name = "cka"}``, ``"CKA[kernel=linear]"`` and
    ``{name = "cka", kernel = "linear"}`` are one entry; other parameters make another."""
    name, params = _entry_parts(entry)
    numbers = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
               for k, v in params.items()}  # sigma = 1 and sigma = 1.0 are one value
    return measure_label({"name": name, **numbers})


def _measure_entries(value: Any, where: str) -> list[Any]:
    """Check a list of measure entries: type, shape of each entry, known names and parameters.

    Returns the entries with registered names (``"CKA"`` → ``"cka"``) and the notation
    read (``"cka[kernel=rbf]"`` → ``{name = "cka", kernel = "rbf"}``).
    """
    from repscope.measures.registry import measure

    if isinstance(value, str):
        raise _problem(f"{where} must be a list of measure names, e.g. [{_show(value)}]; got "
                       f"the string {_show(value)}")
    if not isinstance(value, list):
        raise _problem(f"{where} must be a list of measure names or {{ name = … }} tables; got "
                       f"{_show(value)}")
    if not value:
        raise _problem(f"{where} must name at least one measure")
    out: list[Any] = []
    for entry in value:
        if isinstance(entry, dict):
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                raise _problem(f"{where}: a measure table needs name = \"…\"; got {_show(entry)}")
            if "[" in name:
                raise _problem(f"{where}: in a table, write the parameters as keys, e.g. "
                               f"{{ name = \"cka\", kernel = \"rbf\" }}; got {_show(entry)}")
        elif not isinstance(entry, str):
            raise _problem(f"{where} entries are measure names or {{ name = … }} tables; got "
                           f"{_show(entry)}")
        try:
            name, params = _entry_parts(entry)
            m = measure(entry) if isinstance(entry, str) else measure(name, **params)
        except RepscopeError as exc:
            raise _problem(f"{where}: {exc}") from None
        typed = {k: m.params[k] for k in params}  # "cka[sigma=1]": sigma = 1.0
        out.append({"name": m.info.name, **typed} if params else m.info.name)
    return out


def _closest(text: str, name: str, compared: list[Any], labels: list[str]) -> str:
    """``"; did you mean …?"``: an entry of the same measure, else the closest label."""
    same = [label for m, label in zip(compared, labels) if measure_name(m) == name.lower()]
    close = same[:1] or difflib.get_close_matches(text, labels, n=1)
    return f"; did you mean {_show(close[0])}?" if close else ""


def primary_label(primary: str, compared: list[Any]) -> str:
    """The label of the ``[compare] measures`` entry that ``[report] primary_measure`` names.

    ``primary`` is a name or a label in the report's notation; a bare name that only
    one entry has names that entry (``"cka"`` for ``{ name = "cka", kernel = "rbf" }``).

    Raises
    ------
    PydanticCustomError
        No entry (or more than one) matches; the message lists the entries.
    """
    labels = [measure_label(m) for m in compared]
    listed = ", ".join(dict.fromkeys(labels))
    try:
        key = canonical_measure(primary)
        name = measure_name(primary)
    except RepscopeError as exc:
        raise _problem(f"[report] primary_measure: {exc}") from None
    for m, label in zip(compared, labels):
        if canonical_measure(m) == key:
            return label
    by_name = list(dict.fromkeys(label for m, label in zip(compared, labels)
                                 if measure_name(m).lower() == name.lower()))
    if "[" not in primary and len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1 and "[" not in primary:
        raise _problem(f"[report] primary_measure {_show(primary)} matches several [compare] "
                       f"measures ({', '.join(by_name)}); write one of them")
    raise _problem(f"[report] primary_measure {_show(primary)} is not one of the [compare] "
                   f"measures ({listed}){_closest(primary, name, compared, labels)}")


def _compare_measures(value: Any) -> list[Any]:
    return _measure_entries(value, "measures")


def _stats_measures(value: Any) -> list[Any] | None:
    return None if value is None else _measure_entries(value, "measures")


# ------------------------------------------------------------------ tables
class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StudyTable(_Table):
    """``[study]``: what the study is called."""

    name: str | None = Field(
        None, min_length=1,
        description="Name of the study; default: the file name without `.toml`.")


class DatasetTable(_Table):
    """``[dataset]``: the inputs every model is run on (not needed for saved activations)."""

    kind: Literal["digits", "sentences", "npy", "none"] = Field(
        "none",
        description="`digits`: scikit-learn's bundled 8×8 digits (labels included); "
        "`sentences`: English sentences (built in, or one per line of `path`); `npy`: an "
        "array of model inputs in `path`; `none`: only saved activations.")
    split: Literal["test", "train"] | None = Field(
        None, description="`digits` only: which split the models are run on (default "
        "`test`; probes and stitching train on the train split).")
    n: int | None = Field(
        None, gt=0, description="Use the first `n` inputs (default: all). Must not exceed "
        "the inputs there are.")
    path: str | None = Field(
        None, min_length=1, description="`npy`: the `.npy` array of inputs; `sentences`: a "
        "UTF-8 text file, one sentence per line. Relative to the study file.")
    labels: str | None = Field(
        None, min_length=1, description="`npy` only: a `.npy` vector of integer labels (for "
        "probes). Relative to the study file.")
    seed: int | None = Field(
        None, ge=0, description="`digits` only: seed of the train/test split (default 0).")

    @field_validator("path", "labels")
    @classmethod
    def _file_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        base = (info.context or {}).get("base")
        if value is not None and base is not None:
            path = (Path(base) / value).resolve()
            if not path.is_file():
                raise _problem(f"{info.field_name}: file not found: {path}")
        return value

    @model_validator(mode="after")
    def _applies(self) -> DatasetTable:
        only = {"split": ("digits",), "seed": ("digits",), "labels": ("npy",),
                "path": ("npy", "sentences")}
        for key, kinds in only.items():
            if getattr(self, key) is not None and self.kind not in kinds:
                raise _problem(f"{key} applies to kind = {' or '.join(map(_show, kinds))} "
                               f"only, not to kind = {_show(self.kind)}")
        if self.kind == "npy" and self.path is None:
            raise _problem("kind = \"npy\" needs path = \"….npy\", an array of model inputs")
        if self.kind == "none" and self.n is not None:
            raise _problem("n needs a dataset kind (digits, sentences or npy)")
        return self


def _layers(value: Any) -> Any:
    if value is None or value == "all":
        return value
    if isinstance(value, str):
        raise _problem(f"layers must be \"all\" or a list of layer names, e.g. [{_show(value)}]; "
                       f"got the string {_show(value)}")
    if not isinstance(value, list) or not value:
        raise _problem(f"layers must be \"all\" or a non-empty list of layer names; got "
                       f"{_show(value)}")
    for layer in value:
        if isinstance(layer, bool) or not isinstance(layer, (str, int)) or layer == "":
            raise _problem(f"layers entries are layer names (or indices); got {_show(layer)}")
    return value


class ModelTable(_Table):
    """``[[models]]``: one model; give exactly one of `factory`, `hf` or `activations`."""

    name: str = Field(..., min_length=1, description="Unique name of the model in the study.")
    factory: str | None = Field(
        None, description="`\"package.module:function\"` returning a `torch.nn.Module`. "
        "Runs code: only factories registered in `repscope.zoo` (or by an installed "
        "package's `repscope.factories` entry point) load without `--trust MODULE`.")
    kwargs: dict[str, Any] | None = Field(
        None, description="`factory` only: keyword arguments of the factory, a table.")
    hf: str | None = Field(
        None, min_length=1, description="A Hugging Face model: a built-in name "
        "(`all-MiniLM-L6-v2`, `all-mpnet-base-v2`), a model id in the local Hugging Face "
        "cache (`\"org/name\"`), or a local model folder; loaded offline (never downloaded), "
        "never with remote code.")
    pooling: Literal["mean", "last", "first", "cls"] | None = Field(
        None, description="`hf` only: how token activations become one row per input "
        "(default `mean`).")
    layers: Annotated[Any, BeforeValidator(_layers)] = Field(
        None, description="`factory`: the list of module names to extract "
        "(`repscope.extract.list_layers(model)` shows them); `hf`: `\"all\"` (default) or a "
        "list. Not used with `activations`.",
        json_schema_extra={"toml_type": "`\"all\"` or list of strings"})
    activations: dict[str, str] | None = Field(
        None, min_length=1, description="Saved activations: a table mapping layer names to "
        "`.npy` files of shape (n, d), relative to the study file (loaded without pickle).")
    batch_size: int | None = Field(
        None, gt=0, description="`factory` and `hf`: inputs per forward pass (default 64).")

    @field_validator("factory")
    @classmethod
    def _factory_syntax(cls, value: str | None) -> str | None:
        if value is not None and not _FACTORY.match(value):
            raise _problem(f"factory must be \"package.module:function\"; got {_show(value)}")
        return value

    @field_validator("activations")
    @classmethod
    def _activation_files(cls, value: dict[str, str] | None,
                          info: ValidationInfo) -> dict[str, str] | None:
        base = (info.context or {}).get("base")
        for layer, file in (value or {}).items():
            if not layer:
                raise _problem("activations: layer names must not be empty")
            if base is not None:
                path = (Path(base) / file).resolve()
                if not path.is_file():
                    raise _problem(f"activations layer {_show(layer)}: file not found: {path}")
        return value

    @property
    def kind(self) -> str:
        """``"torch"``, ``"hf"`` or ``"activations"``."""
        return "torch" if self.factory else "hf" if self.hf else "activations"

    @model_validator(mode="after")
    def _one_kind(self) -> ModelTable:
        kinds = [k for k in ("factory", "hf", "activations") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise _problem(f"needs exactly one of factory, hf or activations (found: "
                           f"{', '.join(kinds) or 'none'})")
        only = {"kwargs": ("factory",), "pooling": ("hf",), "batch_size": ("factory", "hf"),
                "layers": ("factory", "hf")}
        for key, kinds_ok in only.items():
            if getattr(self, key) is not None and kinds[0] not in kinds_ok:
                raise _problem(f"{key} applies to {' and '.join(kinds_ok)} models only")
        if self.factory is not None and self.layers in (None, "all"):
            raise _problem("list the module names to extract in layers (repscope.extract."
                           "list_layers(model) shows them)")
        return self


class CompareTable(_Table):
    """``[compare]``: which measures, between which layers."""

    measures: Annotated[list[Any], BeforeValidator(_compare_measures)] = Field(
        ["cka", "procrustes", "mean_cca"],
        description="Measure names (any case; `repscope measures` lists them), with "
        "parameters in the report's notation (`\"cka[kernel=rbf,sigma=0.5]\"`) or as "
        "`{ name = \"cka\", kernel = \"rbf\" }` tables.",
        json_schema_extra={"toml_type": "list of names or tables"})
    pairs: Literal["cross", "within", "all"] = Field(
        "cross", description="`cross`: layers of different models; `within`: layers of one "
        "model; `all`: both.")
    profile: bool = Field(
        True, description="Invariance profile of each best-matching layer pair.")
    fitted: Literal["heldout", "in_sample"] = Field(
        "heldout", description="Values of fitted measures (CCA family, regression): "
        "held-out or in-sample.")
    memory: str | int | None = Field(
        None, description="Memory budget of each comparison (`\"4GiB\"`, `\"512MiB\"` or "
        "bytes; default: half the available memory). A measure whose exact in-memory path "
        "does not fit takes its exact blocked or estimated path (result column `path`) or "
        "records an error naming the largest n it handles.",
        json_schema_extra={"toml_type": "string or integer"})

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        if v is None:
            return v
        try:
            parse_memory(v)
        except RepscopeError as exc:
            raise _problem(str(exc)) from None
        return v


class StatsTable(_Table):
    """``[stats]``: permutation tests, confidence intervals and their adjustment."""

    permutations: int = Field(0, ge=0, description="Permutations of the permutation test "
                              "(0 = off); raised for a figure's family up to "
                              "`max_permutations`.")
    bootstrap: int = Field(0, ge=0, description="Confidence intervals: on (> 0; resamples "
                           "of the bootstrap methods) or off (0).")
    seed: int = Field(0, ge=0, description="Seed of every random choice in the comparisons.")
    measures: Annotated[list[Any] | None, BeforeValidator(_stats_measures)] = Field(
        None, description="Which `[compare] measures` entries get statistics (default: "
        "all); each must be one of them (`\"cka\"` and `{ name = \"cka\" }` are one entry, "
        "`\"cka[kernel=rbf]\"` another).",
        json_schema_extra={"toml_type": "list of names or tables"})
    ci: Literal[CI_METHODS] = Field(  # type: ignore[valid-type]
        DEFAULT_CI_METHOD, description="Interval method.")
    adjust: Literal["bh", "holm"] = Field(
        "bh", description="p-values adjusted within each figure: Benjamini–Hochberg or Holm.")
    q: float = Field(0.05, gt=0, lt=1, description="Level of the adjustment.")
    max_permutations: int = Field(10_000, gt=0, description="Budget of permutations when "
                                  "they rise for a figure's family.")


class FunctionalTable(_Table):
    """``[functional]``: analyses that use the models' task, not only their activations."""

    probes: bool = Field(False, description="Linear probes of every layer (needs labels).")
    stitching: bool = Field(False, description="Stitching matrices between `factory` models "
                            "(needs the digits train split).")


class ReportTable(_Table):
    """``[report]``: the HTML report."""

    primary_measure: str | None = Field(
        None, min_length=1, description="Measure of the report's heatmaps and best matches; "
        "one of the `[compare] measures`, as a name or a label such as "
        "`\"cka[kernel=rbf]\"` (default: the first).")
    title: str | None = Field(None, min_length=1, description="Page title (default: the "
                              "study name).")
    stability_resamples: int = Field(
        50, ge=0, description="Bootstrap resamples of the inputs for the stability of each "
        "best match under the primary measure (how often the best-matching layer changes; "
        "0 = off). Not computed when the primary measure is fitted (CCA family, regression).")


class StudyFile(_Table):
    """A whole study file: the tables above, each optional except `[[models]]`."""

    study: StudyTable = StudyTable()
    dataset: DatasetTable = DatasetTable()
    models: list[ModelTable] = Field(..., min_length=1)
    compare: CompareTable = CompareTable()
    stats: StatsTable = StatsTable()
    functional: FunctionalTable = FunctionalTable()
    report: ReportTable = ReportTable()

    @model_validator(mode="after")
    def _consistent(self) -> StudyFile:
        names = [m.name for m in self.models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise _problem(f"[[models]] names must be unique; {', '.join(map(_show, twice))} "
                           "appears more than once")
        if self.dataset.kind == "none" and any(m.kind != "activations" for m in self.models):
            raise _problem("models that must be run need a [dataset] (kind = digits, "
                           "sentences or npy)")
        compared = self.compare.measures
        keys = {canonical_measure(m) for m in compared}
        listed = ", ".join(dict.fromkeys(measure_label(m) for m in compared))
        labels = [measure_label(m) for m in compared]
        for entry in self.stats.measures or []:
            if canonical_measure(entry) not in keys:
                label = measure_label(entry)
                hint = _closest(label, measure_name(entry), compared, labels)
                raise _problem(f"[stats] measures: {_show(label)} is not one of the [compare] "
                               f"measures ({listed}){hint}")
        if self.report.primary_measure is not None:
            primary_label(self.report.primary_measure, compared)
        return self
