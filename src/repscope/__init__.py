"""repscope: in what sense do two neural networks represent the world alike?

Quick start::

    import repscope
    repscope.list_measures()                 # metadata of every measure
    cka = repscope.measure("cka")            # a callable (X, Y) -> float
    cka(X, Y)

See the README for the measure table and the documentation in ``docs/``.
"""

from __future__ import annotations

from . import extract, models, stats, store, testing
from .allpairs import grid
from .comparison import ResultTable, compare
from .errors import (
    DegeneracyWarning,
    DegenerateInputError,
    InputShapeError,
    InputValueError,
    InsufficientSamplesError,
    InvalidParameterError,
    NonFiniteResultError,
    RepscopeError,
    RepscopeWarning,
    UnknownMeasureError,
)
from .invariance_profile import InvarianceProfile, profile
from .measures.base import Measure, Prepared
from .metadata import Invariance, MeasureInfo
from .moments import SecondMoments
from .registry import list_measures, measure, measure_class, measure_info, register, unregister
from .results import ResultsDB
from .store import ActivationStore
from .validation import flatten_tokens

__version__ = "0.1.0"

__all__ = [
    "ActivationStore",
    "InvarianceProfile",
    "ResultTable",
    "ResultsDB",
    "compare",
    "extract",
    "grid",
    "models",
    "profile",
    "stats",
    "store",
    "DegeneracyWarning",
    "DegenerateInputError",
    "InputShapeError",
    "InputValueError",
    "InsufficientSamplesError",
    "InvalidParameterError",
    "Invariance",
    "Measure",
    "MeasureInfo",
    "NonFiniteResultError",
    "Prepared",
    "RepscopeError",
    "RepscopeWarning",
    "SecondMoments",
    "UnknownMeasureError",
    "flatten_tokens",
    "list_measures",
    "measure",
    "measure_class",
    "measure_info",
    "register",
    "testing",
    "unregister",
]
