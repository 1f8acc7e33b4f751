"""The profile's result: one verdict per class, the shared directions, and the sentence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from repscope.core.notebook import html_table

__all__ = ["CLASS_ORDER", "VERDICTS", "ClassVerdict", "InvarianceProfile", "compose_sentence"]

#: classes in report order: the chain (strict → loose), then the separate aspects
CLASS_ORDER: tuple[str, ...] = ("permutation", "orthogonal", "linear", "neighbourhood", "function")
CHAIN: tuple[str, ...] = ("permutation", "orthogonal", "linear")
VERDICTS: tuple[str, ...] = ("equivalent", "partial", "unrelated", "undetermined")

PHRASES: dict[str, str] = {
    "permutation": "a permutation of units",
    "orthogonal": "rotation",
    "linear": "an invertible linear map",
    "neighbourhood": "neighbourhood structure",
    "function": "outputs",
    "softmax": "the softmax family's class (f ↦ A f with g ↦ A⁻ᵀ g)",
}


@dataclass(frozen=True)
class ClassVerdict:
    """The verdict of one invariance class, with the numbers it rests on.

    Attributes
    ----------
    name : the class (:data:`CLASS_ORDER`).
    verdict : ``"equivalent"``, ``"partial"``, ``"unrelated"`` or ``"undetermined"``.
    statistic, weighting : what ``score`` is and how it weighs directions or inputs.
    score : the statistic on the data; ``ci`` its interval (level ``1 − alpha``).
    null : mean, sd, upper quantile and size of the permutation null.
    margin : the equivalence margin (``value`` and, in words, ``text``).
    ceiling : the statistic's expected value at the margin.
    reason : why this verdict, in one clause.
    pvalue, p_floor : permutation p-value, Holm-adjusted over the classes of the profile
        (one family), and the floor ``1/(m + 1)`` of the unadjusted one (``pvalue_raw``).
    position, position_ci : where the score lies between chance (0) and the ceiling (1).
    detectable : for ``unrelated``: the smallest effect the test would have detected
        with 80 % power (shared variance for the chain classes, the statistic's value
        for the aspects).
    directions : the score of each direction of prediction (chain classes).
    others : further numbers for context (e.g. the held-out mean CCA).
    """

    name: str
    verdict: str
    statistic: str
    weighting: str
    score: float | None
    ci: tuple[float, float] | None
    null: dict[str, float] | None
    margin: dict[str, Any]
    ceiling: float | None
    reason: str
    pvalue: float | None = None
    p_floor: float | None = None
    position: float | None = None
    position_ci: tuple[float, float] | None = None
    detectable: float | None = None
    pvalue_raw: float | None = None
    directions: dict[str, float] = field(default_factory=dict)
    others: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def phrase(self) -> str:
        return PHRASES[self.name]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci else None
        d["position_ci"] = list(self.position_ci) if self.position_ci else None
        d["warnings"] = list(self.warnings)
        return d


@dataclass(frozen=True)
class InvarianceProfile:
    """Per-class verdicts, the shared directions and the sentence of :func:`profile`.

    Attributes
    ----------
    classes : ``{name: ClassVerdict}`` in :data:`CLASS_ORDER`, then ``softmax`` when the
        profile was given unembeddings.
    strongest : the strictest chain class judged ``equivalent``, or ``None``.
    shared : per direction of prediction, how many principal directions (and
        what share of the variance) are predictable; see
        :mod:`repscope.inference.profile.spectrum`.
    sentence : the verdicts in plain words.
    n, dx, dy : sizes of the pair; ``stats`` whether the references were computed.
    settings : margin, alpha, numbers of permutations and simulations, k, seed.
    """

    classes: dict[str, ClassVerdict]
    strongest: str | None
    shared: list[dict[str, Any]]
    sentence: str
    n: int
    dx: int
    dy: int
    stats: bool
    settings: dict[str, Any]

    def __getitem__(self, name: str) -> ClassVerdict:
        return self.classes[name]

    def verdict(self, name: str) -> str:
        """The verdict of class ``name``."""
        return self.classes[name].verdict

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per class (the ``classes`` entries of :meth:`to_dict`)."""
        return [c.to_dict() for c in self.classes.values()]

    def to_dict(self) -> dict[str, Any]:
        return {"strongest": self.strongest, "sentence": self.sentence, "n": self.n,
                "dx": self.dx, "dy": self.dy, "stats": self.stats, "settings": self.settings,
                "classes": self.to_records(), "shared": self.shared}

    def __str__(self) -> str:
        lines = [f"Invariance profile (n={self.n}, A: {self.dx} units, B: {self.dy} units)"]
        for c in self.classes.values():
            score = "" if c.score is None else f"{c.score:7.3f}"
            ci = "" if c.ci is None else f"[{c.ci[0]:.3f}, {c.ci[1]:.3f}]"
            lines.append(f"  {c.name:<13} {c.verdict:<12} {score:>7} {ci:<17} {c.reason}")
        lines.append(self.sentence)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"InvarianceProfile(strongest={self.strongest!r}, sentence={self.sentence!r})"

    def _repr_html_(self) -> str:
        """The notebook view: the verdict of each class as an HTML table, then the sentence."""
        rows = []
        for c in self.classes.values():
            rows.append([
                c.name, c.verdict, "" if c.score is None else f"{c.score:.3f}",
                "" if c.ci is None else f"[{c.ci[0]:.3f}, {c.ci[1]:.3f}]",
                _p(c).removeprefix("p ").removeprefix("= "), c.reason,
            ])
        return html_table(
            ["class", "verdict", "score", "CI", "p (Holm)", "why"], rows,
            caption=f"Invariance profile (n={self.n}, A: {self.dx} units, B: {self.dy} units)",
            paragraphs=[self.sentence], right=["score", "CI", "p (Holm)"])


# ------------------------------------------------------------------ sentence
def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if 0 < x < 0.1 else f"{100 * x:.0f} %"


def _r2(c: ClassVerdict) -> str:
    ci = f" [{c.ci[0]:.2f}, {c.ci[1]:.2f}]" if c.ci else ""
    return f"held-out R² {c.score:.2f}{ci}"


def _p(c: ClassVerdict) -> str:
    if c.pvalue is None:
        return ""
    raw = c.pvalue_raw if c.pvalue_raw is not None else c.pvalue
    sign = "≤" if c.p_floor is not None and raw <= c.p_floor else "="
    return f"p {sign} {c.pvalue:.2g}"


def _chain_clause(classes: dict[str, ClassVerdict]) -> tuple[str | None, str]:
    chain = [classes[n] for n in CHAIN if classes[n].score is not None]
    if not chain:
        return None, "no linear-algebraic class could be assessed"
    margin = chain[0].margin.get("value")
    equivalent = [c for c in chain if c.verdict == "equivalent"]
    if equivalent:
        best = equivalent[0]
        text = (f"equivalent up to {best.phrase} ({_r2(best)} in both directions; margin: "
                f"≤ {100 * margin:g} % of the variance unexplained)")
        stricter = [c for c in chain if CHAIN.index(c.name) < CHAIN.index(best.name)]
        if stricter:
            c = stricter[-1]
            text += f", but not up to {c.phrase} ({c.verdict}, {_r2(c)})"
        return best.name, text
    loose = chain[-1]
    if all(c.verdict == "undetermined" and c.pvalue is None for c in chain):
        scores = ", ".join(f"up to {c.phrase} {c.score:.2f}" for c in chain)
        return None, f"held-out R² {scores} (statistics off: no verdict)"
    if loose.verdict == "unrelated":
        det = (f"; a map sharing ≥ {_pct(loose.detectable)} of the variance would have been "
               "detected" if loose.detectable is not None else "")
        return None, (f"no relation detected even up to {loose.phrase} ({_r2(loose)}, "
                      f"{_p(loose)}{det})")
    if loose.verdict == "partial":
        pos = (f", {loose.position:.2f} of the way from chance to the ceiling of the "
               f"{100 * margin:g} % margin" if loose.position is not None else "")
        text = f"partly alike up to {loose.phrase} ({_r2(loose)}{pos})"
        strict = next((c for c in chain[:-1] if c.verdict == "partial"), None)
        if strict is not None and strict.score is not None:
            text += f"; {strict.phrase} alone reaches {strict.score:.2f}"
        return None, text
    if loose.pvalue is not None and loose.pvalue > loose.margin.get("alpha", 0.05):
        return None, (f"no relation detected up to {loose.phrase} ({_r2(loose)}, {_p(loose)}), "
                      "but at this n the held-out fits could not have detected one: even a pair "
                      "at the margin scores no better than chance")
    return None, (f"related up to {loose.phrase} ({_r2(loose)}, {_p(loose)}), but this sample "
                  f"cannot tell whether within the {100 * margin:g} % margin")


def _shared_clause(classes: dict[str, ClassVerdict], shared: list[dict[str, Any]]) -> str | None:
    lin = classes["linear"]
    above = lin.pvalue is not None and lin.pvalue <= lin.margin.get("alpha", 0.05)
    if not above or lin.score is None or not shared:
        return None
    by_target = {s["target"]: s for s in shared}
    lacking = [s for s in shared if s["not_predictable"] > 0
               and s["variance_not_predictable"] >= 0.005]
    if not lacking:
        return None
    parts = []
    for s in lacking:
        other = by_target.get(s["source"])
        if other is not None and other["not_predictable"] == 0 and len(lacking) == 1:
            r2 = lin.directions.get(f"{s['source']} from {s['target']}")
            lead = (f"{s['source']} is close to a linear function of {s['target']}"
                    + (f" (held-out R² {r2:.2f})" if r2 is not None else "") + ", but ")
        else:
            lead = ""
        if lead:
            parts.append(
                f"{lead}about {s['not_predictable']} of {s['directions']} principal directions "
                f"of {s['target']}, carrying {_pct(s['variance_not_predictable'])} of its "
                f"variance, have held-out R² < 0.5 from {s['source']}")
        else:
            parts.append(
                f"{s['predictable']} of {s['directions']} principal directions of {s['target']}"
                f" ({_pct(s['variance_predictable'])} of its variance) are predictable from "
                f"{s['source']} (held-out R² ≥ 0.5), the other {s['not_predictable']} "
                f"({_pct(s['variance_not_predictable'])}) are not")
    text = "; ".join(parts)
    note = _cca_note(lin, by_target)
    return text + (f" ({note})" if note else "")


def _cca_note(lin: ClassVerdict, by_target: dict[str, dict[str, Any]]) -> str | None:
    """Why the equal-weighted held-out mean CCA differs from the variance-weighted score."""
    cca = lin.others.get("held-out mean CCA")
    if cca is None or lin.score is None:
        return None
    ranks = [s["directions"] for s in by_target.values()]
    if cca - lin.score >= 0.1 and len(set(ranks)) > 1:
        return (f"the held-out mean CCA, {cca:.2f}, averages over only {min(ranks)} canonical "
                "pairs, so directions present in one representation alone never count")
    if lin.score - cca >= 0.1:
        return (f"the held-out mean CCA, {cca:.2f}, is lower because it weighs every canonical "
                "direction alike, the low-variance ones included")
    return None


def _aspect_clause(c: ClassVerdict, label: str) -> str | None:
    if c.score is None:
        return None
    verdict = c.verdict if c.pvalue is not None else "not judged (statistics off)"
    return f"{c.phrase}: {verdict} ({label} {c.score:.2f})"


def compose_sentence(classes: dict[str, ClassVerdict],
                     shared: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The strongest equivalent chain class, and the verdicts in one or two sentences."""
    strongest, main = _chain_clause(classes)
    clauses = [main]
    aspects = [(classes["neighbourhood"], "mutual kNN"),
               (classes["function"], "prediction agreement")]
    if "softmax" in classes:
        aspects.append((classes["softmax"], "log-odds R²"))
    for c, label in aspects:
        clause = _aspect_clause(c, label)
        if clause:
            clauses.append(clause)
    text = "; ".join(clauses)
    text = text[0].upper() + text[1:] + "."
    extra = _shared_clause(classes, shared)
    if extra:
        text += " " + extra[0].upper() + extra[1:] + "."
    return strongest, text
