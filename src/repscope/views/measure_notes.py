"""One line per measure for a reader: what it ignores, what it sees, how to read its colours.

The lines come from each measure's metadata (:class:`repscope.MeasureInfo`
and :attr:`Measure.invariances`, which may depend on parameters), so they
cannot drift from what the conformance suite checks.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Iterable
from typing import Any

from repscope.core.errors import RepscopeError
from repscope.measures.metadata import Invariance

__all__ = ["colour_domain", "describe_measure", "invariance_line"]

#: the transformations a reader cares about, in the order they are listed
_WORDS: dict[Invariance, str] = {
    Invariance.PERMUTATION: "permutations of units",
    Invariance.ORTHOGONAL: "rotations and reflections",
    Invariance.INVERTIBLE_LINEAR: "invertible linear maps",
    Invariance.ISOTROPIC_SCALING: "isotropic scaling",
    Invariance.TRANSLATION: "translations",
}


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def invariance_line(invariances: Iterable[Invariance | str]) -> str:
    """``"Ignores rotations and reflections, …; sees invertible linear maps."``

    A measure *ignores* the transformations it is invariant to (two
    representations that differ only by one of them get the identity value)
    and *sees* the others.  Nested classes are named once: a measure that
    ignores invertible linear maps is not also said to ignore rotations.
    """
    inv = {Invariance(i) for i in invariances}
    if Invariance.AFFINE in inv:
        inv |= {Invariance.INVERTIBLE_LINEAR, Invariance.TRANSLATION}
    ignored = []
    for k, word in _WORDS.items():
        if k not in inv:
            continue
        if k is Invariance.PERMUTATION and Invariance.ORTHOGONAL in inv:
            continue
        if k is Invariance.ORTHOGONAL and Invariance.INVERTIBLE_LINEAR in inv:
            continue
        if k is Invariance.ISOTROPIC_SCALING and Invariance.INVERTIBLE_LINEAR in inv:
            continue
        ignored.append(word)
    seen = [w for k, w in _WORDS.items() if k not in inv]
    if Invariance.ORTHOGONAL in inv or Invariance.INVERTIBLE_LINEAR in inv:
        seen = [w for w in seen if w != _WORDS[Invariance.PERMUTATION]]
    parts = []
    parts.append(f"Ignores {_join(ignored)}" if ignored else "Ignores none of the standard "
                 "transformations")
    parts.append(f"sees {_join(seen)}" if seen else "sees only non-linear differences")
    return "; ".join(parts) + "."


def _first_sentence(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    first = doc.strip().split("\n\n", 1)[0].replace("\n", " ").strip()
    return first.rstrip(".") + "." if first else ""


def _instance(name: str, params: Any) -> Any:
    from repscope.measures.registry import measure

    given = json.loads(params) if isinstance(params, str) else dict(params or {})
    try:
        return measure(name, **given)
    except (RepscopeError, TypeError):
        return measure(name)


def describe_measure(label: str, name: str, params: Any = None,
                     fitted_form: str = "") -> dict[str, Any]:
    """What the report says about one measure label (JSON-serialisable).

    Keys: ``label``, ``name``, ``kind`` (similarity/distance), ``direction``
    (``"max"``: larger = more alike), ``arrow`` (``"↑ more alike"`` or ``"↓ more
    alike"``), ``range`` (declared, ``null`` for an infinite end),
    ``symmetric``, ``invariances``, ``line`` (what it ignores and sees),
    ``asymmetry`` (how to read a cell of an asymmetric measure, else ``""``),
    ``fitted`` (held-out / in-sample note) and ``reference``.
    """
    try:
        m = _instance(name, params)
    except RepscopeError:  # a measure that is no longer registered
        return {"label": label, "name": name, "kind": "similarity", "direction": "max",
                "arrow": "↑ more alike", "range": [None, None], "symmetric": True,
                "invariances": [], "line": "Not a registered measure in this repscope.",
                "asymmetry": "", "fitted": fitted_form, "reference": "", "version": None}
    info = m.info
    kind = info.kind
    lo, hi = info.value_range
    invs = sorted(i.value for i in m.invariances)
    asym = ""
    if not info.symmetric:
        asym = (f"Asymmetric: the cell in row r, column c is {name}(X = r, Y = c). "
                f"{_first_sentence(type(m))}")
    fitted = ""
    if fitted_form == "held-out":
        fitted = ("Held-out value: fitted on a random half of the inputs, evaluated on the "
                  "other half (in-sample values approach 1 as d → n even for unrelated data).")
    elif fitted_form == "in-sample":
        fitted = ("In-sample value of a fitted measure: it approaches 1 as d → n even for "
                  "unrelated data.")
    return {
        "label": label,
        "name": name,
        "kind": kind,
        "direction": "max" if kind == "similarity" else "min",
        "arrow": "↑ more alike" if kind == "similarity" else "↓ more alike",
        "range": [None if math.isinf(lo) else lo, None if math.isinf(hi) else hi],
        "symmetric": bool(info.symmetric),
        "invariances": invs,
        "line": invariance_line(m.invariances),
        "asymmetry": asym,
        "fitted": fitted,
        "reference": info.reference,
        "version": info.version,
    }


def colour_domain(declared: list[float | None], values: Iterable[float]) -> dict[str, Any]:
    """One colour scale for all of a measure's panels (so colours compare across panels).

    The declared range when both ends are finite and the observed values cover
    at least half of it (colours then mean the same in every report), widened
    to the observed values when they fall outside it (held-out R² can be
    negative); otherwise the observed range over all the measure's panels (a
    CKA whose values all lie in [0.75, 0.95] would be one colour on [−1, 1]).
    ``source`` says which, for the caption.
    """
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    lo_obs = min(vals) if vals else 0.0
    hi_obs = max(vals) if vals else 1.0
    lo, hi = declared
    if lo is not None and hi is not None and hi > lo:
        lo2, hi2 = min(lo, lo_obs), max(hi, hi_obs)
        if (hi_obs - lo_obs) >= 0.5 * (hi - lo):
            source = ("declared range" if (lo2, hi2) == (lo, hi)
                      else "declared range, widened to the observed values")
            return {"lo": lo2, "hi": hi2, "source": source}
    if hi_obs <= lo_obs:
        pad = abs(lo_obs) * 1e-3 or 1e-3
        lo_obs, hi_obs = lo_obs - pad, hi_obs + pad
    return {"lo": lo_obs, "hi": hi_obs, "source": "observed range over all its panels"}
