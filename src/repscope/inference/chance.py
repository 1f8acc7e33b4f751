r"""Chance levels: what a measure says about *unrelated* representations of a given shape.

Many measures are far from their nominal "unrelated" value when the number of
inputs ``n`` is not large compared with the widths: unrelated 100 × 300
Gaussians have SVCCA ≈ 0.97, NBS ≈ 0.92 and biased linear CKA ≈ 0.76; the
in-sample CCA family and regression approach 1 as ``d → n``; neighbourhood
overlaps sit at ``k / (n − 1)``.  :func:`chance_level` estimates the chance
level of a configured measure at a shape ``(n, d_A, d_B)`` as its mean over
``reps`` pairs of independent standard Gaussian matrices of that shape (fixed
seed, so the value is reproducible), computed once per measure, parameters and
shape and cached for the process.

:func:`chance_columns` turns it into the result-row columns ``chance`` and —
when no permutation null was computed for the row — ``calibrated``:

.. math::  \mathrm{calibrated} = \frac{v - c}{v_{\mathrm{id}} - c},

0 at chance and 1 for identical representations (``v_id`` = the measure's
value on identical inputs), and a warning when the chance level lies more than
:data:`WARN_SHARE` of the way from the measure's nominal unrelated value
(0 for a similarity whose range contains 0, the top of the range for a
bounded distance) to ``v_id``.

Gaussian inputs have the largest effective rank a shape allows; real
representations with a decaying spectrum have a lower one, and some measures
(biased CKA among them) are then *more* inflated by chance.  The permutation
null of :mod:`repscope.inference.permutation` (rows of the real data shuffled)
is the calibration to use for claims; the chance level here is the
cheap, always-on warning.  For ``n`` above :data:`MAX_REFERENCE_N` the
reference is drawn at that ``n`` (chance levels only fall with ``n``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.core.warning_capture import capture_warnings
from repscope.measures.base import Measure

__all__ = ["chance_level", "chance_columns", "WARN_SHARE", "MAX_REFERENCE_N"]

#: warn when chance lies this far (share of the way) from the nominal value to identity
WARN_SHARE = 0.1

#: largest n at which the Gaussian reference is drawn
MAX_REFERENCE_N = 4000

_CACHE: dict[tuple[Any, ...], float | None] = {}


def _params_key(m: Measure) -> str | None:
    try:
        return json.dumps(m.params, sort_keys=True, default=repr)
    except TypeError:  # pragma: no cover - params are JSON-able or repr-able
        return None


def _has_per_sample_params(m: Measure, n: int) -> bool:
    for v in m.params.values():
        shape = getattr(v, "shape", None)
        if shape is not None and len(shape) >= 1 and int(shape[0]) == n:
            return True
        if isinstance(v, (list, tuple)) and len(v) == n and n > 1:
            return True
    return False


def chance_level(m: Measure, n: int, dx: int, dy: int, *, reps: int = 3) -> float | None:
    """Mean value of ``m`` on ``reps`` pairs of independent Gaussian (n, dx), (n, dy) inputs.

    ``None`` when it cannot be estimated: the measure does not compare
    representations, needs per-sample parameters (labels), or raises on the
    reference inputs.  Cached per (measure, parameters, shape).
    """
    if m.info.input_kind != "representation" or _has_per_sample_params(m, n):
        return None
    key = (m.info.name, _params_key(m), int(n), int(dx), int(dy), reps)
    if key in _CACHE:
        return _CACHE[key]
    rng = np.random.default_rng([int(n), int(dx), int(dy)])
    n_ref = min(int(n), MAX_REFERENCE_N)
    values = []
    try:
        with capture_warnings():  # recorded and dropped: the reference's own warnings
            for _ in range(reps):
                values.append(float(m(rng.standard_normal((n_ref, dx)),
                                      rng.standard_normal((n_ref, dy)))))
        out: float | None = float(np.mean(values))
    except (RepscopeError, np.linalg.LinAlgError, ValueError):
        out = None
    if out is not None and not math.isfinite(out):
        out = None
    _CACHE[key] = out
    return out


def _nominal(m: Measure) -> float | None:
    lo, hi = m.info.value_range
    if m.info.kind == "similarity":
        return 0.0 if lo <= 0.0 <= hi else lo
    return hi if math.isfinite(hi) else None


def chance_columns(m: Measure, value: float | None, n: int, dx: int, dy: int,
                   have_null: bool) -> tuple[dict[str, Any], str | None]:
    """Row columns (``chance``, and ``calibrated``/``calibration``) and an optional warning."""
    chance = chance_level(m, n, dx, dy)
    cols: dict[str, Any] = {"chance": chance}
    if have_null:
        cols["calibration"] = "permutation"
    if chance is None:
        return cols, None
    ident = m.info.identity
    usable = ident is not None and math.isfinite(ident)
    if not have_null and value is not None and usable and abs(ident - chance) > 1e-9:
        cols["calibrated"] = (value - chance) / (ident - chance)
        cols["calibration"] = "chance"
    nominal = _nominal(m)
    if nominal is None or not usable or ident == nominal:
        return cols, None
    share = (chance - nominal) / (ident - nominal)
    if share <= WARN_SHARE:
        return cols, None
    n_note = f"n = {n}" if n <= MAX_REFERENCE_N else f"n = {MAX_REFERENCE_N} (capped)"
    shape = f"{n_note}, d = {dx}" if dx == dy else f"{n_note}, dx = {dx}, dy = {dy}"
    return cols, (
        f"ChanceWarning: {m.info.name} of unrelated data at {shape} is ≈ {chance:.3g} "
        f"({100 * share:.0f} % of the way from {nominal:g} to identical); read the value "
        "against that chance level: the calibrated column maps chance to 0 and identity to 1")
