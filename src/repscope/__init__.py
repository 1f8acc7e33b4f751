"""repscope: in what sense do two neural networks represent the world alike?

Quick start::

    import repscope
    repscope.list_measures()                 # metadata of every measure
    cka = repscope.measure("cka")            # a callable (X, Y) -> float
    repscope.measure("cka[kernel=rbf]")      # parameters in the report's notation
    cka(X, Y)
    repscope.compare(X, Y, stats="all")      # several measures with statistics
    repscope.profile(X, Y).sentence          # in which senses they agree
    repscope.grid(reps, db="results.sqlite") # all pairs of many layers, resumable
    repscope.report                          # HTML reports: build_report, write_report

The names below are loaded on first use (PEP 562), so ``import repscope`` is
cheap.  The package is laid out by role — ``core``, ``measures``,
``inference``, ``engine``, ``storage``, ``extract``, ``probing``,
``identifiability``, ``study``, ``report``, ``cli`` — see ``docs/design.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from repscope import _legacy
from repscope.core.version import __version__

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # measures
    "Measure": "repscope.measures.base",
    "Prepared": "repscope.measures.base",
    "Invariance": "repscope.measures.metadata",
    "MeasureInfo": "repscope.measures.metadata",
    "SecondMoments": "repscope.measures.moments",
    "list_measures": "repscope.measures.registry",
    "measure": "repscope.measures.registry",
    "measure_class": "repscope.measures.registry",
    "measure_info": "repscope.measures.registry",
    "parse_measure": "repscope.measures.spec",
    "register": "repscope.measures.registry",
    "unregister": "repscope.measures.registry",
    # comparisons and answers
    "compare": "repscope.engine.compare",
    "grid": "repscope.engine.grid",
    "ResultTable": "repscope.engine.table",
    "profile": "repscope.inference.profile",
    "InvarianceProfile": "repscope.inference.profile",
    # storage
    "ActivationStore": "repscope.storage.activation_store",
    "ResultsDB": "repscope.storage.results_db",
    # inputs and errors
    "flatten_tokens": "repscope.core.validation",
    "DegeneracyWarning": "repscope.core.errors",
    "DegenerateInputError": "repscope.core.errors",
    "InputShapeError": "repscope.core.errors",
    "InputValueError": "repscope.core.errors",
    "InsufficientSamplesError": "repscope.core.errors",
    "InvalidParameterError": "repscope.core.errors",
    "NonFiniteResultError": "repscope.core.errors",
    "NumericalError": "repscope.core.errors",
    "RepscopeError": "repscope.core.errors",
    "RepscopeWarning": "repscope.core.errors",
    "UnknownMeasureError": "repscope.core.errors",
}

#: subpackages and public modules reachable as attributes (``repscope.extract``)
_SUBMODULES: frozenset[str] = frozenset({
    "core", "measures", "inference", "engine", "storage", "extract", "probing",
    "identifiability", "study", "report", "zoo", "cli", "testing",
})

__all__ = [
    "__version__",
    "extract",
    "inference",
    "report",
    "testing",
    "Measure",
    "Prepared",
    "Invariance",
    "MeasureInfo",
    "SecondMoments",
    "list_measures",
    "measure",
    "measure_class",
    "measure_info",
    "parse_measure",
    "register",
    "unregister",
    "compare",
    "grid",
    "ResultTable",
    "profile",
    "InvarianceProfile",
    "ActivationStore",
    "ResultsDB",
    "flatten_tokens",
    "DegeneracyWarning",
    "DegenerateInputError",
    "InputShapeError",
    "InputValueError",
    "InsufficientSamplesError",
    "InvalidParameterError",
    "NonFiniteResultError",
    "NumericalError",
    "RepscopeError",
    "RepscopeWarning",
    "UnknownMeasureError",
]

_legacy.install()


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES or name in _legacy.OLD_ATTRIBUTES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'repscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from repscope import extract, inference, report, testing
    from repscope.core.errors import (
        DegeneracyWarning,
        DegenerateInputError,
        InputShapeError,
        InputValueError,
        InsufficientSamplesError,
        InvalidParameterError,
        NonFiniteResultError,
        NumericalError,
        RepscopeError,
        RepscopeWarning,
        UnknownMeasureError,
    )
    from repscope.core.validation import flatten_tokens
    from repscope.engine.compare import compare
    from repscope.engine.grid import grid
    from repscope.engine.table import ResultTable
    from repscope.inference.profile import InvarianceProfile, profile
    from repscope.measures.base import Measure, Prepared
    from repscope.measures.metadata import Invariance, MeasureInfo
    from repscope.measures.moments import SecondMoments
    from repscope.measures.registry import (
        list_measures,
        measure,
        measure_class,
        measure_info,
        register,
        unregister,
    )
    from repscope.measures.spec import parse_measure
    from repscope.storage.activation_store import ActivationStore
    from repscope.storage.results_db import ResultsDB
