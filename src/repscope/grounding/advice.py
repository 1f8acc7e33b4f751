"""Which measure for which question: recommendations read off a grounding table.

Every sentence is derived from the rows of a
:class:`~repscope.grounding.benchmark.GroundingResult` (as its JSON): for each
question, the tests that answer it, the measure ranked first on them (mean
score over those tests), the measures whose interval overlaps the leader's
(not shown apart by this zoo), and whether the leader's interval clears the
test's chance level.  Nothing is hard-coded but the questions themselves.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["CHANCE", "QUESTIONS", "chance_levels", "recommend"]

#: question → the tests that answer it
QUESTIONS: dict[str, tuple[str, ...]] = {
    "Is this the same layer in another training run?": ("layer_identification",),
    "Does the measure see changes that cost accuracy (deleted components)?":
        ("sensitivity",),
    "Does it see the loss of low-variance directions that cost accuracy?":
        ("sensitivity_low",),
    "Does it move more for function-changing edits than for a different seed?":
        ("specificity",),
    "Does it follow how differently two models behave (accuracy, outputs)?":
        ("accuracy_correlation", "output_correlation"),
    "Does it tell models trained differently apart (labels, shortcuts, augmentation)?":
        ("label_randomisation", "shortcut", "augmentation"),
    "Does it follow depth within a model?": ("monotonicity",),
}

#: chance level of the tests whose chance does not depend on the zoo
CHANCE: dict[str, float] = {"sensitivity": 0.0, "sensitivity_low": 0.0, "specificity": 0.5,
                            "accuracy_correlation": 0.0, "output_correlation": 0.0,
                            "monotonicity": 0.0}


def chance_levels(settings: dict[str, Any]) -> dict[str, float]:
    """Chance per test: :data:`CHANCE`, 1 / layers for layer identification, the share of
    in-group pairs for the group tests (from the result's settings)."""
    out = dict(CHANCE)
    layers = settings.get("layers") or []
    if layers:
        out["layer_identification"] = 1 / len(layers)
    for test, g in (settings.get("groups") or {}).items():
        out[test] = g.get("chance", math.nan)
    return out


def _finite(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def recommend(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per question the result can answer: ``question``, ``tests``, ``best``,
    ``score``, ``low``, ``high`` (mean over the tests of the leader's score and interval
    ends), ``tied`` (measures whose interval overlaps the leader's), ``above_chance`` and
    ``sentence``."""
    rows = result["rows"]
    chance = chance_levels(result.get("settings", {}))
    out = []
    for question, tests in QUESTIONS.items():
        tests = tuple(t for t in tests if t in result["tests"])
        if not tests:
            continue
        stats: dict[str, tuple[float, float, float]] = {}
        partial = 0
        for m in result["measures"]:
            cells = [r for r in rows if r["measure"] == m and r["test"] in tests]
            if len(cells) != len(tests) or not all(_finite(r["score"], r["ci_low"],
                                                           r["ci_high"]) for r in cells):
                continue
            if any(r.get("failed") for r in cells):  # scored on the comparisons that worked
                partial += 1
                continue
            stats[m] = tuple(sum(r[k] for r in cells) / len(cells)
                             for k in ("score", "ci_low", "ci_high"))  # type: ignore[assignment]
        if not stats:
            out.append({"question": question, "tests": list(tests), "best": None,
                        "sentence": "no measure has a finite score and interval here"})
            continue
        best = max(stats, key=lambda m: stats[m][0])
        s, lo, hi = stats[best]
        tied = [m for m in stats if m != best and stats[m][2] >= lo]
        ch = [chance.get(t, math.nan) for t in tests]
        ch_mean = sum(ch) / len(ch) if all(_finite(c) for c in ch) else math.nan
        above = bool(_finite(ch_mean) and lo > ch_mean)
        sentence = f"{best} leads ({s:.2f} [{lo:.2f}, {hi:.2f}]"
        sentence += f"; chance {ch_mean:.2f})" if _finite(ch_mean) else ")"
        if tied:
            sentence += (f"; not shown apart from it: {', '.join(tied[:6])}"
                         + (f" and {len(tied) - 6} more" if len(tied) > 6 else ""))
        else:
            sentence += "; its interval is clear of every other measure's"
        if partial:
            sentence += (f"; {partial} measure{'s' if partial > 1 else ''} with failed "
                         "comparisons on these tests not considered")
        if _finite(ch_mean) and not above:
            sentence += "; but its interval reaches chance, so this zoo does not show " \
                        "that any measure answers this question"
        out.append({"question": question, "tests": list(tests), "best": best, "score": s,
                     "low": lo, "high": hi, "tied": tied, "chance": ch_mean,
                     "above_chance": above, "sentence": sentence + "."})
    return out
