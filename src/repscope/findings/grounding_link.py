"""Which measure to trust for each class: the grounding benchmark's evidence on the findings page.

The findings judge pairs with the profile's class statistics (held-out R² of the best map
in a class, mutual kNN).  When a ``repscope ground`` result is at hand, the page says how
the measure closest to each statistic fared on the grounding tests with a known answer —
the same zoo-level evidence the grounding page shows, read from its ``grounding.json``
(plain JSON: the findings do not import the grounding package).  Nothing is hard-coded
but the class → measure correspondence:

============== ============================ ============================================
class          closest measure              why
============== ============================ ============================================
permutation    ``permutation_procrustes``   best permutation of units (with scale)
orthogonal     ``procrustes``               best orthogonal map
linear         ``linear_regression_cv``     held-out R² of a linear map (else the
                                            in-sample ``linear_regression``)
neighbourhood  ``mutual_knn``               the profile's neighbourhood statistic itself
============== ============================ ============================================

For each class the sentence names the tests on which the measure ranks in the best
quarter of the measures scored *and* its interval clears the test's chance level, and
those on which its interval does not clear chance; the full rows (score, interval,
rank) go to the page's evidence table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from repscope.core.errors import RepscopeError

__all__ = ["CLASS_MEASURES", "find_grounding", "grounding_evidence"]

#: the class statistic → the registered measures closest to it, the first scored is used
CLASS_MEASURES: dict[str, tuple[str, ...]] = {
    "permutation": ("permutation_procrustes",),
    "orthogonal": ("procrustes",),
    "linear": ("linear_regression_cv", "linear_regression"),
    "neighbourhood": ("mutual_knn",)}


def find_grounding(out: Path, explicit: Path | None = None) -> Path | None:
    """``explicit`` (must exist), else ``grounding.json`` in ``out``, in ``out``'s
    ``grounding`` subfolder or in a sibling ``grounding`` folder (``repscope ground``'s
    default output beside ``repscope findings``'), else ``None``."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise RepscopeError(f"no grounding result at {explicit}: run `repscope ground "
                                "--out DIR` and pass DIR/grounding.json")
        return Path(explicit)
    for cand in (out / "grounding.json", out / "grounding" / "grounding.json",
                 out.parent / "grounding" / "grounding.json"):
        if cand.is_file():
            return cand
    return None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def grounding_evidence(path: Path) -> dict[str, Any]:
    """Per class, the closest measure's grounding rows and one sentence (module docstring).

    Raises
    ------
    RepscopeError
        The file is not a ``repscope ground`` result.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        rows, measures = data["rows"], data["measures"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RepscopeError(f"{path} is not a repscope ground result ({exc})") from None
    chance = data.get("chance") or {}
    n_measures = len(measures)
    classes: dict[str, Any] = {}
    for cls, names in CLASS_MEASURES.items():
        name = next((m for m in names if m in measures), names[0])
        mine = [r for r in rows if r.get("measure") == name]
        if not mine:
            classes[cls] = {"measure": name, "rows": [], "good": [], "weak": [],
                            "sentence": f"{cls}: {' or '.join(names)} not scored by this "
                            "grounding run"}
            continue
        good = [r["test"] for r in mine if not r.get("failed") and _finite(r.get("rank"))
                and r["rank"] <= max(1.0, n_measures / 4)
                and (not _finite(chance.get(r["test"])) or r["ci_low"] > chance[r["test"]])]
        weak = [r["test"] for r in mine if _finite(r.get("ci_high"))
                and _finite(chance.get(r["test"])) and r["ci_high"] <= chance[r["test"]]]
        failed = [r["test"] for r in mine if r.get("failed")]
        parts = [f"{cls} ({name})"]
        parts.append(f"among the best quarter of the {n_measures} measures, and above "
                     "chance, on " + ", ".join(good) if good else
                     f"never both among the best quarter of the {n_measures} measures and "
                     "above chance")
        if weak:
            parts.append("not above chance on " + ", ".join(weak))
        if failed:
            parts.append("failed on some comparisons of " + ", ".join(failed))
        classes[cls] = {"measure": name, "rows": mine, "good": good, "weak": weak,
                        "sentence": "; ".join(parts)}
    return {"path": str(path), "description": data.get("description", ""),
            "n_measures": n_measures, "chance": chance, "classes": classes}
