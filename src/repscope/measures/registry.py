"""The measure registry: look up, list and register measures by name.

The built-in measures are registered when :mod:`repscope.measures` is imported,
which Python does before it runs this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar

from repscope.core.errors import RepscopeError, UnknownMeasureError
from repscope.measures.base import Measure
from repscope.measures.metadata import MeasureInfo

__all__ = ["register", "unregister", "measure", "list_measures", "measure_info", "measure_class"]

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


def measure_class(name: str) -> type[Measure]:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownMeasureError(
            f"unknown measure {name!r}{hint} (repscope.list_measures() lists all)"
        ) from None


def measure(name: str, **params: Any) -> Measure:
    """Return the measure ``name`` configured with ``params``: a callable ``(X, Y) -> float``."""
    return measure_class(name)(**params)


def measure_info(name: str) -> MeasureInfo:
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
