"""One-line messages for study files that fail the schema of :mod:`repscope.study.schema`.

A :class:`pydantic.ValidationError` lists problems by location
(``("models", 0, "kwargs")``) and type (``dict_type``); this module says each
in the words of the TOML file (``[[models]] "a" kwargs must be a table, e.g.
kwargs = { seed = 0 }; got [1, 2]``), with a suggestion where one fits (the
closest allowed key or value), and joins them on one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from repscope.study.schema import StudyFile, _show

__all__ = ["describe_errors"]

#: how many problems one message lists
_MAX_SHOWN = 4


def _did_you_mean(word: Any, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {_show(close[0])}?" if close else ""


def _table_class(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The schema class of the table at ``loc`` (``()`` is the whole file)."""
    cls: type[BaseModel] = StudyFile
    for part in loc:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        if get_origin(ann) is list:
            ann = get_args(ann)[0]
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        cls = ann
    return cls


def _is_int_field(loc: Sequence[Any]) -> bool:
    table = _table_class(loc[:-1]) if loc else None
    field = table.model_fields.get(str(loc[-1])) if table is not None else None
    return field is not None and int in (field.annotation, *get_args(field.annotation))


def _where(loc: Sequence[Any], data: Any) -> tuple[str, list[str]]:
    """(``"[dataset]"`` or ``'[[models]] "a"'``, the remaining key path)."""
    if not loc:
        return "", []
    head, rest = str(loc[0]), list(loc[1:])
    if head == "models":
        if rest and isinstance(rest[0], int):
            i = rest.pop(0)
            name = None
            models = data.get("models") if isinstance(data, Mapping) else None
            if isinstance(models, list) and i < len(models) and isinstance(models[i], Mapping):
                name = models[i].get("name")
            label = _show(name) if isinstance(name, str) and name else f"#{i + 1}"
            return f"[[models]] {label}", [str(p) for p in rest]
        return "[[models]]", [str(p) for p in rest]
    if _table_class((head,)) is None:  # a key at the top level
        return "", [head, *map(str, rest)]
    return f"[{head}]", [str(p) for p in rest]


def _example(key: str) -> str:
    return {"kwargs": "kwargs = { seed = 0 }",
            "activations": 'activations = { layer1 = "layer1.npy" }'}.get(key, "{ key = value }")


def _message(err: Mapping[str, Any], data: Any) -> str:
    loc = tuple(err.get("loc", ()))
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    section, keys = _where(loc, data)
    key = ".".join(keys)
    subject = " ".join(p for p in (section, key) if p)
    got = f"; got {_show(value)}"
    if kind == "study":
        return " ".join(p for p in (section, str(ctx.get("message", err["msg"]))) if p)
    if kind == "extra_forbidden":
        word = loc[-1] if loc else "?"
        if str(word).lower() in ("trust", "trusted", "allow", "allowlist"):
            return (f"{section + ' ' if section else ''}{word}: a study file cannot grant "
                    "trust; pass --trust MODULE to `repscope run` (Python: trust=[...])")
        table = _table_class(loc[:-1])
        allowed = sorted(table.model_fields) if table is not None else []
        if not section:
            return (f"unknown table [{word}]{_did_you_mean(word, allowed)} (tables: "
                    f"{', '.join(allowed)})")
        return (f"{section} unknown key {_show(word)}{_did_you_mean(word, allowed)} "
                f"(allowed: {', '.join(allowed)})")
    if kind == "missing":
        if loc == ("models",):
            return "a study needs at least one [[models]] table"
        return f"{section} needs {keys[-1] if keys else 'a value'}"
    if kind == "too_short" and loc == ("models",):
        return "a study needs at least one [[models]] table"
    if kind == "literal_error":
        choices = [c.strip().strip("'") for c in
                   str(ctx.get("expected", "")).replace(" or ", ", ").split(",")]
        return (f"{subject} must be one of {', '.join(choices)}{got}"
                f"{_did_you_mean(value, choices)}")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if not keys:
            return f"{section or subject} must be a table{got}"
        return f"{subject} must be a table, e.g. {_example(keys[-1])}{got}"
    if kind == "list_type" and loc == ("models",):
        return f"[[models]] must be an array of tables ([[models]] sections){got}"
    texts = {
        "int_type": "must be an integer", "int_parsing": "must be an integer",
        "int_from_float": "must be an integer", "float_type": "must be a number",
        "float_parsing": "must be a number", "bool_type": "must be true or false (a TOML "
        "boolean, without quotes)", "bool_parsing": "must be true or false",
        "string_type": "must be a string (in quotes)", "list_type": "must be a list",
        "string_too_short": "must not be empty", "too_short": "must not be empty",
    }
    if kind == "greater_than":
        bound = ctx.get("gt")
        text = "must be a positive integer" if bound == 0 and _is_int_field(loc) \
            else f"must be greater than {bound}"
    elif kind == "greater_than_equal":
        bound = ctx.get("ge")
        text = "must be 0 or more" if bound == 0 else f"must be at least {bound}"
    elif kind == "less_than":
        text = f"must be less than {ctx.get('lt')}"
    elif kind == "less_than_equal":
        text = f"must be at most {ctx.get('le')}"
    else:
        text = texts.get(kind, str(err.get("msg", "is invalid")).lower())
    return f"{subject} {text}{got}".strip()


def describe_errors(exc: ValidationError, data: Any, source: str = "") -> str:
    """The problems of one validation as one line, prefixed with ``source`` (a file name)."""
    messages = list(dict.fromkeys(_message(e, data) for e in exc.errors(include_url=False)))
    shown = "; ".join(m.replace("\n", " ") for m in messages[:_MAX_SHOWN])
    if len(messages) > _MAX_SHOWN:
        shown += f"; and {len(messages) - _MAX_SHOWN} more"
    if len(messages) > 1:
        shown = f"{len(messages)} problems: {shown}"
    return f"{source}: {shown}" if source else shown
