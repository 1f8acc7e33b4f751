"""The measure registry: look up, list and register measures by name.

The built-in measures are registered when :mod:`repscope.measures` is imported,
which Python does before it runs this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar

from repscope.core.errors import (
    LIST_MEASURES_HINT,
    InvalidParameterError,
    RepscopeError,
    UnknownMeasureError,
)
from repscope.measures.base import Measure
from repscope.measures.metadata import MeasureInfo
from repscope.measures.spec import parse_measure

__all__ = [
    "canonical_name",
    "list_measures",
    "measure",
    "measure_class",
    "measure_info",
    "register",
    "unregister",
]

_REGISTRY: dict[str, type[Measure]] = {}

M = TypeVar("M", bound=type[Measure])


def register(cls: M | None = None, *, overwrite: bool = False) -> Any:
    """Class decorator adding a :class:`Measure` subclass to the registry.

    Use it for your own measures too, then check them with
    :func:`repscope.testing.check_measure`::

        @repscope.register
        class MyMeasure(repscope.Measure):
            info = repscope.MeasureInfo(name="my_measure", ...)
            def _compare(self, px, py): ...
    """

    def deco(c: M) -> M:
        info = getattr(c, "info", None)
        if not isinstance(info, MeasureInfo):
            raise RepscopeError(f"{c.__name__} needs a class attribute `info: MeasureInfo`")
        if info.name in _REGISTRY and not overwrite and _REGISTRY[info.name] is not c:
            raise RepscopeError(
                f"a measure named {info.name!r} is already registered; pass overwrite=True"
            )
        _REGISTRY[info.name] = c
        return c

    return deco(cls) if cls is not None else deco


def unregister(name: str) -> None:
    """Remove a measure from the registry (mainly for tests of custom measures)."""
    _REGISTRY.pop(name, None)


#: how an unknown name's message ends (the CLI swaps it for `repscope measures`:
#: :data:`repscope.core.errors.CLI_HINTS`)
LIST_HINT = LIST_MEASURES_HINT


def canonical_name(name: str) -> str:
    """The registered name that ``name`` denotes: the same name, or one differing only in case.

    A name written with parameters (``"CKA[kernel=rbf]"``) denotes its measure's name.

    Raises
    ------
    UnknownMeasureError
        No registered measure has this name (the message suggests the closest ones).
    """
    if not isinstance(name, str):
        raise UnknownMeasureError(f"a measure name must be a str, got {name!r}")
    if "[" in name:
        name = parse_measure(name).name
    name = name.strip()
    if name in _REGISTRY:
        return name
    same = [k for k in _REGISTRY if k.lower() == name.lower()]
    if len(same) == 1:
        return same[0]
    if len(same) > 1:
        raise UnknownMeasureError(
            f"measure {name!r} is ambiguous: {', '.join(sorted(same))} differ only in case"
        )
    lower = {k.lower(): k for k in _REGISTRY}
    close = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownMeasureError(f"unknown measure {name!r}{hint} {LIST_HINT}")


def measure_class(name: str) -> type[Measure]:
    """The class registered under ``name`` (case-insensitive; see :func:`canonical_name`)."""
    return _REGISTRY[canonical_name(name)]


def _typed_like_defaults(cls: type[Measure], params: dict[str, Any]) -> dict[str, Any]:
    """Integers written for float parameters become floats (``sigma=1`` is ``sigma=1.0``)."""
    out = dict(params)
    for k, v in params.items():
        d = cls.info.params.get(k)
        if isinstance(d, float) and isinstance(v, int) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def measure(name: str, *, memory: Any = None, path: str = "auto", **params: Any) -> Measure:
    """Return the measure ``name`` configured with ``params``: a callable ``(X, Y) -> float``.

    ``name`` is matched case-insensitively and may carry parameters in the
    report's notation, ``"cka[kernel=rbf,sigma=0.5]"``
    (:func:`repscope.measures.spec.parse_measure`); keyword ``params`` add to them
    (a parameter given both ways must have the same value).  Parameters the
    measure does not have raise :class:`~repscope.InvalidParameterError` listing
    the ones it has.

    ``memory`` is the budget the measure plans within (``"4GiB"``, a number of bytes;
    default: half the available memory, :mod:`repscope.core.memory`); ``path`` asks
    for one path (``"exact"``, ``"exact-blocked"``, ``"estimated"``) instead of the
    planned one (``"auto"``).  See :meth:`Measure.plan`.
    """
    if isinstance(name, str) and name in _REGISTRY:  # a registered name as it is
        return _REGISTRY[name](**params).configure(memory=memory, path=path)
    return _configured(name, params).configure(memory=memory, path=path)


def _configured(name: str, params: dict[str, Any]) -> Measure:
    parsed = parse_measure(name) if isinstance(name, str) else None
    cls = measure_class(parsed.name if parsed else name)
    given = _typed_like_defaults(cls, parsed.params) if parsed else {}
    for k, v in params.items():
        if k in given and given[k] != v:
            raise InvalidParameterError(
                f"{cls.info.name}: parameter {k} is {given[k]!r} in {name!r} and {v!r} as a "
                "keyword; give it once"
            )
        given[k] = v
    return cls(**given)


def measure_info(name: str) -> MeasureInfo:
    """The metadata of the measure ``name`` (case-insensitive)."""
    return measure_class(name).info


def list_measures(
    family: str | None = None, where: Callable[[MeasureInfo], bool] | None = None
) -> list[MeasureInfo]:
    """Metadata of every registered measure, sorted by family then name."""
    infos = [c.info for c in _REGISTRY.values()]
    if family is not None:
        infos = [i for i in infos if i.family == family]
    if where is not None:
        infos = [i for i in infos if where(i)]
    return sorted(infos, key=lambda i: (i.family, i.name))
