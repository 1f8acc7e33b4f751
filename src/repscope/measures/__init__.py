"""The measures: one module per family, each measure a :class:`Measure` with metadata.

Importing this package registers every built-in measure.  Where things are:

* :mod:`.base` — :class:`Measure` and :class:`Prepared` (prepare once, compare often);
* :mod:`.metadata` — :class:`MeasureInfo` and :class:`Invariance` (what a measure declares);
* :mod:`.registry` — look up, list and register measures by name;
* :mod:`.spec` — measures written as text, ``"cka[kernel=rbf,sigma=0.5]"``;
* :mod:`.moments` — :class:`SecondMoments`, the sufficient statistics of moment measures;
* :mod:`.moment_measure` — :class:`MomentMeasure`, the base of the second-moment measures;
* :mod:`.catalogue` — the measure tables of the README and ``docs/measures.md``;
* :mod:`.ranks` — centred ranks of long vectors (RSA's Spearman step);
* the family modules of :data:`BUILTIN_FAMILIES` — one per family of measures
  (``_kernels`` and ``_knn`` hold their shared kernel and neighbour helpers).

A measure's formula, invariances and reference are in its class docstring and
its ``info``; its tests are in ``tests/measures/test_<family>.py`` and the
generated conformance suite ``tests/test_conformance.py``.
"""

from __future__ import annotations

from repscope.measures import (  # noqa: F401  (importing a family module registers its measures)
    alignment,
    cca,
    cca_variants,
    cka,
    dcor,
    functional,
    information,
    m_svd,
    neighbours,
    procrustes,
    regression,
    rsa,
    rsm,
    shape,
    statistics,
)
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import Invariance, MeasureInfo
from repscope.measures.registry import (
    canonical_name,
    list_measures,
    measure,
    measure_class,
    measure_info,
    register,
    unregister,
)
from repscope.measures.spec import format_measure, parse_measure

#: the modules whose measures are built in (registered when this package is imported)
BUILTIN_FAMILIES: tuple[str, ...] = (
    "alignment", "cca", "cca_variants", "cka", "dcor", "functional", "information", "m_svd",
    "neighbours", "procrustes", "regression", "rsa", "rsm", "shape", "statistics",
)

__all__ = [
    "BUILTIN_FAMILIES",
    "Invariance",
    "Measure",
    "MeasureInfo",
    "Prepared",
    "canonical_name",
    "format_measure",
    "list_measures",
    "measure",
    "measure_class",
    "measure_info",
    "parse_measure",
    "register",
    "unregister",
]
