"""``run_findings``: train or read the populations, profile every pair, write the page.

The steps, each cached or resumable:

1. the image networks of :func:`~repscope.findings.population.plan` are trained on
   Fashion-MNIST or read from the zoo folder (:func:`repscope.zoo.training.train_population`);
   the tiny language models likewise (:func:`repscope.zoo.tiny_lm.train_language_models`);
2. representations at three relative depths (:mod:`.representations`), on a fixed
   subset of test images (seed 0), held-out text windows, and the sentences of
   ``repscope/data/sentences.txt`` for MiniLM and MPNet;
3. one invariance profile per pair × depth (:mod:`.compute`), written to
   ``findings.sqlite`` in the output folder — rows already there are skipped;
4. aggregates, trends and BH q-values (:mod:`.compose`), sentences (:mod:`.sentences`),
   and the page (:mod:`.page`): ``findings.html``, ``findings.md``, ``findings.json``.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.findings.compose import compute_results
from repscope.findings.compute import knn_rows, profile_pairs, settings_key
from repscope.findings.grounding_link import find_grounding, grounding_evidence
from repscope.findings.page import write_outputs
from repscope.findings.population import FindingsPlan, Group, plan
from repscope.findings.representations import (
    Rep,
    image_reps,
    lm_reps,
    mobilenet_reps,
    reduce_width,
    sentence_reps,
)
from repscope.findings.sentences import direction_findings, group_finding
from repscope.findings.store import ResultsStore
from repscope.inference.profile import DECISION_RULES

__all__ = ["SENTENCE_ENCODERS", "run_findings"]

SENTENCE_ENCODERS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")


def _say(progress: bool) -> Any:
    def say(msg: str) -> None:
        if progress:
            print(f"repscope findings: {msg}", file=sys.stderr, flush=True)
    return say


def _image_part(p: FindingsPlan, store: ResultsStore, reps: dict[str, Rep], zoo: Path | None,
                data_path: Path | None, progress: bool) -> tuple[np.ndarray, str]:
    from repscope.zoo.images import load_fashion_mnist
    from repscope.zoo.training import train_population

    train = load_fashion_mnist("train", path=data_path)
    test = load_fashion_mnist("test", path=data_path)
    trained = train_population(p.images, train, test, folder=zoo, progress=progress)
    n = min(p.settings["n_inputs"], len(test.images))
    idx = np.sort(np.random.default_rng(0).permutation(len(test.images))[:n])
    images = test.images[idx]
    for spec in p.images:
        e = trained.entries[spec.name]
        info = {k: e.get(k) for k in ("test_accuracy", "test_reconstruction_mse",
                                      "train_seconds", "training_flops", "weights_sha256",
                                      "parameters")}
        info["factors"] = e["spec"]["factors"]
        store.put_model(spec.name, "image", info)
        reps[spec.name] = image_reps(trained.load(spec.name), spec.name, images, info)
    return images, test.sha256


def _lm_part(p: FindingsPlan, store: ResultsStore, reps: dict[str, Rep], zoo: Path | None,
             corpus_path: Path | None, progress: bool) -> str:
    from repscope.zoo.tiny_lm import train_language_models

    n_windows = p.settings["n_windows"]
    lmzoo = train_language_models(p.lms, folder=zoo, corpus_path=corpus_path,
                                  n_eval_windows=n_windows, progress=progress)
    for spec in p.lms:
        e = lmzoo.entries[spec.name]
        info = {k: e.get(k) for k in ("held_out_loss", "tokens_seen", "training_flops",
                                      "parameters", "train_seconds", "weights_sha256")}
        store.put_model(spec.name, "lm", info)
        windows = lmzoo.windows(spec.context, n_windows)
        reps[spec.name] = lm_reps(lmzoo.load(spec.name), spec.name, windows, info)
    return str(lmzoo.tokenizer.sha256)


def _real_part(p: FindingsPlan, store: ResultsStore, reps: dict[str, Rep], images: np.ndarray,
               say: Any) -> tuple[list[Group], list[str]]:
    """MiniLM ↔ MPNet and MobileNetV2 ↔ the base MLPs; skipped parts say why."""
    groups, skipped = [], []
    text = resources.files("repscope.data").joinpath("sentences.txt").read_text("utf-8")
    sentences = [s for s in text.splitlines() if s.strip()][: p.settings["n_sentences"]]
    found = []
    for name in SENTENCE_ENCODERS:
        try:
            rep = sentence_reps(name, sentences)
        except RepscopeError as exc:  # not installed: say which package
            skipped.append(f"{name}: {exc}")
            say(f"skipping {name}: {exc}")
            continue
        k = len(sentences) // 4
        rep.reduced = any(x.shape[1] > k for _, x in rep.layers.values())
        rep.layers = {d: (layer, reduce_width(x, k)) for d, (layer, x) in rep.layers.items()}
        reps[name] = rep
        store.put_model(name, "sentence encoder", {**rep.info, "sentences": len(sentences)})
        found.append(name)
    if len(found) == 2:
        groups.append(Group("real networks", f"MiniLM vs MPNet on {len(sentences)} sentences",
                            "How alike are two pre-trained sentence encoders?",
                            ((found[0], found[1], found[0], found[1]),), kind="real"))
    try:
        mob = mobilenet_reps(images, p.settings["mobilenet_size"])
    except RepscopeError as exc:
        skipped.append(f"MobileNetV2: {exc}")
        say(f"skipping MobileNetV2: {exc}")
        return groups, skipped
    k = len(images) // 4
    mob.reduced = True
    mob.layers = {d: (layer, reduce_width(x, k)) for d, (layer, x) in mob.layers.items()}
    reps[mob.name] = mob
    store.put_model(mob.name, "pre-trained image network", mob.info)
    seeds = next(g for g in p.groups if g.factor == "seed")
    base = sorted({a for a, _, _, _ in seeds.pairs} | {b for _, b, _, _ in seeds.pairs})
    size = p.settings["mobilenet_size"]
    groups.append(Group("real networks", f"MobileNetV2 (ImageNet) vs the base MLPs trained "
                        f"here, on {len(images)} test images (domain-shifted: {size} × {size} "
                        "inverted RGB copies)", "Where does a pre-trained ImageNet network sit "
                        "on the same scales?",
                        tuple((mob.name, m, mob.name, m) for m in base), kind="real"))
    return groups, skipped


def run_findings(preset: str = "quick", *, out: str | Path, zoo: str | Path | None = None,
                 data_path: str | Path | None = None, corpus_path: str | Path | None = None,
                 real: bool = True, progress: bool = True,
                 grounding: str | Path | None = None) -> dict[str, Any]:
    """Compute the findings of ``preset`` into ``out`` (see the module docstring).

    Parameters
    ----------
    preset : ``"quick"``, ``"full"`` or ``"test"`` (:data:`~repscope.findings.population.PLANS`).
    out : output folder; ``findings.sqlite`` there is reused (rows with the same settings
        are not recomputed).
    zoo : zoo folder for the trained models (default ``$REPSCOPE_ZOO_DIR``).
    data_path : folder of the Fashion-MNIST IDX files (default: the Debian package's).
    corpus_path : the language models' corpus file or folder (default: its package).
    real : compare MiniLM ↔ MPNet and MobileNetV2 (skipped, and said so, when absent).
    progress : progress lines on stderr.
    grounding : a ``repscope ground`` result (``grounding.json``) whose evidence on the
        measure closest to each class goes on the page; by default one found in ``out``
        or in a sibling ``grounding`` folder (:func:`~repscope.findings.grounding_link.
        find_grounding`), else none.

    Returns
    -------
    dict
        What ``findings.json`` holds: settings, timings, populations, skipped parts,
        the numbered findings, every cell and trend.

    Raises
    ------
    DataNotFoundError
        Fashion-MNIST or the corpus is absent (the message names the package).
    """
    from repscope.core.threads import single_threaded

    say = _say(progress)
    p = plan(preset)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out / "findings.sqlite")
    reps: dict[str, Rep] = {}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with single_threaded():
        images, data_sha = _image_part(p, store, reps, _path(zoo), _path(data_path),
                                       progress)
        timings["image networks (train or read, extract)"] = time.perf_counter() - t0
        t = time.perf_counter()
        tok_sha = _lm_part(p, store, reps, _path(zoo), _path(corpus_path), progress)
        timings["language models (train or read, extract)"] = time.perf_counter() - t
        t = time.perf_counter()
        real_groups, skipped = (_real_part(p, store, reps, images, say) if real
                                else ([], ["real networks: --no-real"]))
        timings["real networks (extract)"] = time.perf_counter() - t
        groups = p.groups + real_groups
        store.replace_groups([(g.key, g.factor, g.name, g.question, g.level, g.kind,
                               a, b, ua, ub) for g in groups for a, b, ua, ub in g.pairs])
        settings = {k: p.settings[k] for k in ("n_inputs", "n_windows", "n_sentences",
                                               "n_boot", "n_margin", "mobilenet_size")}
        settings.update(seed=0, guard=1, rules=DECISION_RULES, data=data_sha, tokenizer=tok_sha)
        key = settings_key(settings)
        t = time.perf_counter()
        done = profile_pairs(store, reps, [(a, b) for g in groups
                                           for a, b, _, _ in g.pairs], settings, say=say)
        timings["profiles"] = time.perf_counter() - t
        t = time.perf_counter()
        knn_key = settings_key({**settings, "knn": 10})
        final = [s.name for s in p.images if s.family != "autoencoder"
                 and s.epochs == p.settings["epochs"]]
        store.put_knn(knn_rows("image", {m: reps[m] for m in final},
                               {m: reps[m].info["test_accuracy"] for m in final}, settings
                               | {"knn": 10}))
        lms = [s.name for s in p.lms]
        store.put_knn(knn_rows("lm", {m: reps[m] for m in lms},
                               {m: -reps[m].info["held_out_loss"] for m in lms},
                               settings | {"knn": 10}))
        cells, trends = compute_results(store, groups, key, knn_key,
                                        p.settings["n_models_boot"])
    seed_group = next(g for g in groups if g.factor == "seed")
    findings = [f for f in (group_finding(g, cells, seed_group if g.kind == "real" else None)
                            for g in groups) if f]
    findings += direction_findings(trends, groups)
    for i, f in enumerate(findings, 1):
        f["number"] = i
    store.replace_outputs({**cells, **trends}, findings)
    timings["aggregates and findings"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    data = {"preset": preset, "settings": settings, "settings_key": key,
            "profiles_computed_now": done, "skipped": skipped, "timings": timings,
            "populations": _populations(p, groups, store), "findings": findings,
            "cells": cells, "trends": trends}
    gpath = find_grounding(out, _path(grounding))
    data["grounding"] = grounding_evidence(gpath) if gpath is not None else None
    write_outputs(out, data)
    store.close()
    return data


def _path(x: str | Path | None) -> Path | None:
    return None if x is None else Path(x)


def _populations(p: FindingsPlan, groups: list[Group], store: ResultsStore) -> dict[str, Any]:
    """Models and pairs per factor, and the models' training seconds (from the zoo)."""
    models = {r["name"]: r for r in store.rows("SELECT name, kind, info FROM models")}
    out: dict[str, Any] = {}
    for g in groups:
        f = out.setdefault(g.factor, {"groups": 0, "pairs": 0, "models": set()})
        f["groups"] += 1
        f["pairs"] += len(g.pairs)
        f["models"].update(m for a, b, _, _ in g.pairs for m in (a, b))
    for f in out.values():
        secs = [json.loads(models[m]["info"]).get("train_seconds") for m in f["models"]
                if m in models]
        f["train_seconds_sum"] = float(sum(s for s in secs if s is not None))
        f["models"] = len(f["models"])
    out["all"] = {"image_models": len(p.images), "language_models": len(p.lms)}
    return out

