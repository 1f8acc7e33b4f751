"""Measures written as text: ``"cka[kernel=rbf,sigma=0.5]"``.

The report labels a measure with non-default parameters this way, and the same
text names it everywhere a measure is named: ``repscope.measure(...)``,
``compare``/``grid``'s ``measures=``, study files and ``repscope compare -m``.

Grammar::

    measure   :=  name [ "[" [ param { "," param } ] "]" ]
    param     :=  key "=" value
    value     :=  'text' | "text" | true | false | none | integer | number | text

Values are read as booleans (``true``/``false``, any case), ``None``
(``none``/``null``), integers, floating-point numbers, or else strings; quote a
string that would read as something else (``name='1'``) or that holds ``,``,
``[``, ``]`` or ``=``.  Whitespace around names, keys and values is ignored.
This module only reads and writes the notation; looking the name up (case
insensitively) and checking the parameters is :func:`repscope.measures.registry.measure`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from repscope.core.errors import InvalidParameterError

__all__ = ["ParsedMeasure", "format_measure", "format_value", "parse_measure", "parse_value"]

_SPEC = re.compile(r"^\s*([^\[\]=,\s]+)\s*(?:\[(.*)\])?\s*$", re.S)
_KEY = re.compile(r"^[A-Za-z_]\w*$")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.I)
_WORDS: dict[str, Any] = {"true": True, "false": False, "none": None, "null": None}
_SPECIAL = set(",[]='\"")


class ParsedMeasure(NamedTuple):
    """A measure read from text: its ``name`` as written and its ``params``."""

    name: str
    params: dict[str, Any]


def _example(name: str = "cka") -> str:
    return f"e.g. {name}[kernel=rbf,sigma=0.5]" if name == "cka" else f"e.g. {name}[key=value]"


def parse_value(text: str) -> Any:
    """A parameter value from its text: bool, ``None``, int, float, or the (unquoted) string."""
    s = text.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    low = s.lower()
    if low in _WORDS:
        return _WORDS[low]
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    return s


def _split_params(body: str, text: str) -> list[str]:
    """``body`` split at the commas outside quotes."""
    items, current, quote = [], [], ""
    for ch in body:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == ",":
            items.append("".join(current))
            current = []
        elif ch in "[]":
            raise InvalidParameterError(
                f"cannot read measure {text!r}: {ch!r} inside the parameters (quote values "
                f"that contain it, e.g. key='a[1]')"
            )
        else:
            current.append(ch)
    if quote:
        raise InvalidParameterError(f"cannot read measure {text!r}: unclosed quote {quote}")
    items.append("".join(current))
    return items


def parse_measure(text: str) -> ParsedMeasure:
    """Read ``"name"`` or ``"name[key=value,key=value]"`` into a name and its parameters.

    Parameters
    ----------
    text : the measure as written (the report's labels are written this way).

    Returns
    -------
    ParsedMeasure
        ``(name, params)``; the name as written (the registry matches it case
        insensitively), the values read by :func:`parse_value`.

    Raises
    ------
    InvalidParameterError
        The text does not follow the notation (the message says what to write).

    Examples
    --------
    >>> parse_measure("cka[kernel=rbf, sigma=0.5, debiased=true]")
    ParsedMeasure(name='cka', params={'kernel': 'rbf', 'sigma': 0.5, 'debiased': True})
    """
    if not isinstance(text, str):
        raise InvalidParameterError(f"a measure name must be a str, got {text!r}")
    match = _SPEC.match(text)
    if match is None or not match.group(1):
        raise InvalidParameterError(
            f"cannot read measure {text!r}: write a name with optional parameters in "
            f"brackets, {_example()}"
        )
    name, body = match.group(1), match.group(2)
    params: dict[str, Any] = {}
    if body is None or not body.strip():
        return ParsedMeasure(name, params)
    for item in _split_params(body, text):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not _KEY.match(key) or not value.strip():
            raise InvalidParameterError(
                f"cannot read measure {text!r}: parameters are written key=value and "
                f"separated by commas, {_example(name)}; got {item.strip()!r}"
            )
        if key in params:
            raise InvalidParameterError(f"measure {text!r} gives parameter {key!r} twice")
        params[key] = parse_value(value)
    return ParsedMeasure(name, params)


def format_value(value: Any) -> str:
    """The text of a parameter value that :func:`parse_value` reads back as ``value``.

    Strings are quoted only where needed (``'1'``, ``'true'``, ``'a,b'``);
    other values are written with ``str`` (``rbf``, ``0.5``, ``True``, ``None``).
    """
    if isinstance(value, str):
        plain = value == value.strip() and value and not (_SPECIAL & set(value))
        if plain and parse_value(value) == value and isinstance(parse_value(value), str):
            return value
        quote = "'" if "'" not in value else '"'
        return f"{quote}{value}{quote}"
    return str(value)


def format_measure(name: str, params: Mapping[str, Any] | None = None,
                   defaults: Mapping[str, Any] | None = None) -> str:
    """The label ``name[key=value,...]`` of a measure: keys sorted, defaults dropped.

    ``format_measure("cka", {"kernel": "rbf", "sigma": 0.8}, {"kernel": "linear",
    "sigma": 0.8})`` is ``"cka[kernel=rbf]"``; with every parameter at its default
    the label is the bare name.  :func:`parse_measure` reads it back.
    """
    defaults = defaults or {}
    missing = object()
    diff = {}
    for k, v in (params or {}).items():
        d = defaults.get(k, missing)
        try:
            same = d is not missing and bool(d == v)
        except Exception:  # noqa: BLE001 - arrays and other exotic values differ
            same = False
        if not same:
            diff[k] = v
    if not diff:
        return name
    return f"{name}[{','.join(f'{k}={format_value(v)}' for k, v in sorted(diff.items()))}]"
