"""Tiny language models across seeds and widths: KL, d_LLV, d_{f,g} and geometry of f.

``repscope paper lm`` trains (or reads from the zoo) causal transformers of
several widths and seeds on one corpus with one tokeniser
(:mod:`repscope.zoo.tiny_lm`), runs each once over the held-out contexts
(:func:`~repscope.identifiability.next_token.next_token_states`) and hands the
states to :func:`run_lm_experiment`, which compares every pair:

* KL both ways, exact over the vocabulary, and its symmetrised mean ``kl_sym``;
* for same-width pairs, at every K of ``label_counts`` (the K most frequent next
  tokens): d_LLV with its lower end, d_{f,g} as ``[d_fg_lower, d_fg_upper]``;
* m_CCA, linear CKA and Procrustes distance of the hidden states f
  (``repscope.measure``); these need no common width.

Output directory: ``models.csv``, ``pairs.csv`` (one row per pair and K; a pair's
rows are keyed by both models' weight hashes, so a re-run reuses them and a
retrained model is compared again), ``claims.json`` (the claims of
:mod:`.lm_claims` at the main K), ``summary.csv`` (per width) and the figures
``fig_llv_vs_kl``, ``fig_fg_vs_llv``, ``fig_width`` (PNG + SVG).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.identifiability.experiments.common import (
    ResultsTable,
    check_config,
    jsonable,
    make_progress,
)
from repscope.identifiability.experiments.lm_claims import DISSIMILAR, judge_claims
from repscope.identifiability.next_token import NextTokenStates, compare_next_token
from repscope.identifiability.plots import plot_lm_figures

__all__ = ["LM_CONFIGS", "LMConfig", "LMModel", "PAIR_COLUMNS", "run_lm_experiment"]

PAIR_COLUMNS = ("model_a", "model_b", "sha_a", "sha_b", "width_a", "width_b", "seed_a",
                "seed_b", "width", "k", "kl", "kl_reverse", "kl_sym", "d_llv", "d_llv_lower",
                "d_fg_lower", "d_fg_upper", "d_fg_exact", "label_share", "m_cca", "cka",
                "procrustes", "error")


@dataclass(frozen=True)
class LMConfig:
    """Comparison settings: label-set sizes, the K the claims use, the searches, the CIs."""

    label_counts: tuple[int, ...] = (256, 1024)
    main_k: int = 1024
    n_candidates: int = 200
    budget: int = 20_000
    search_seed: int = 0
    n_boot: int = 2000
    boot_seed: int = 0
    dissimilar: float = DISSIMILAR

    RESUME_KEYS = ("label_counts", "n_candidates", "budget", "search_seed")

    def validate(self) -> None:
        if self.main_k not in self.label_counts:
            raise InvalidParameterError(f"main_k {self.main_k} is not one of label_counts "
                                        f"{self.label_counts}")


LM_CONFIGS: dict[str, LMConfig] = {
    "quick": LMConfig(label_counts=(256, 1024), main_k=1024, budget=5_000),
    "full": LMConfig(label_counts=(512, 1024), main_k=1024, budget=5_000),
    "test": LMConfig(label_counts=(32, 64), main_k=64, budget=500, n_boot=200),
}


@dataclass(frozen=True)
class LMModel:
    """One trained model on the held-out contexts (``states``) and where it came from."""

    name: str
    width: int
    seed: int
    sha256: str
    states: NextTokenStates
    info: dict[str, Any]


def _geometry(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    from repscope.measures.registry import measure

    out: dict[str, float | None] = {}
    for col, name in (("m_cca", "mean_cca"), ("cka", "cka"), ("procrustes", "procrustes")):
        try:
            out[col] = float(measure(name)(a, b))
        except RepscopeError:
            out[col] = None
    return out


def _pair_rows(a: LMModel, b: LMModel, cfg: LMConfig) -> list[dict[str, Any]]:
    base = {"model_a": a.name, "model_b": b.name, "sha_a": a.sha256, "sha_b": b.sha256,
            "width_a": a.width, "width_b": b.width, "seed_a": a.seed, "seed_b": b.seed,
            "width": a.width if a.width == b.width else None}
    geo = _geometry(a.states.hidden, b.states.hidden)
    if a.width != b.width:
        from repscope.identifiability.next_token import next_token_kl

        kl = next_token_kl(a.states, b.states)
        return [{**base, "k": k, "kl": kl.forward, "kl_reverse": kl.reverse,
                 "kl_sym": (kl.forward + kl.reverse) / 2, **geo,
                 "error": "d_LLV and d_{f,g} need models of one width"}
                for k in cfg.label_counts]
    res = compare_next_token(a.states, b.states, label_counts=cfg.label_counts,
                             n_candidates=cfg.n_candidates, seed=cfg.search_seed,
                             budget=cfg.budget)
    rows = []
    for point in res.curve:
        rows.append({**base, "k": point["k"], "kl": res.kl.forward,
                     "kl_reverse": res.kl.reverse,
                     "kl_sym": (res.kl.forward + res.kl.reverse) / 2,
                     "d_llv": point.get("d_llv"), "d_llv_lower": point.get("d_llv_lower"),
                     "d_fg_lower": point.get("d_fg_lower"),
                     "d_fg_upper": point.get("d_fg_upper"),
                     "d_fg_exact": point.get("d_fg_exact"),
                     "label_share": point.get("label_share"), **geo,
                     "error": point.get("error", "")})
    return rows


def summarize_widths(pairs: Any, k: int) -> Any:
    """Per width (same-width pairs at K = k): pairs, mean and SD of KL, d_LLV, d_{f,g}
    (both ends), m_CCA, CKA and Procrustes."""
    d = pairs[(pairs["k"] == k) & pairs["width"].notna()]
    cols = ["kl_sym", "d_llv", "d_fg_lower", "d_fg_upper", "m_cca", "cka", "procrustes"]
    g = d.groupby("width")[cols]
    out = g.mean().add_prefix("mean_").join(g.std().add_prefix("sd_"))
    out.insert(0, "n_pairs", d.groupby("width").size())
    return out.reset_index()


def run_lm_experiment(out: str | Path, models: list[LMModel], cfg: LMConfig, *,
                      settings: dict[str, Any] | None = None, progress: bool = True
                      ) -> tuple[Any, dict[str, Any]]:
    """Compare every pair of ``models`` (see the module docstring); returns the pairs
    table and the claims.  ``settings`` (the models' preset, corpus, …) is recorded in
    ``config.json`` and must match on a resumed run."""
    import pandas as pd

    cfg.validate()
    if len(models) < 2:
        raise InvalidParameterError("a comparison needs at least two models")
    out = Path(out)
    config = {**asdict(cfg), **(settings or {})}
    check_config(out, config, [*LMConfig.RESUME_KEYS, *(settings or {})])
    pd.DataFrame([{"name": m.name, "width": m.width, "seed": m.seed, "weights_sha256": m.sha256,
                   "n_contexts": m.states.n_contexts, "logit_error": m.states.logit_error,
                   **m.info} for m in models]).to_csv(out / "models.csv", index=False)
    table = ResultsTable(out / "pairs.csv", key=("sha_a", "sha_b", "k"))
    done = table.done()
    todo = [(a, b) for a, b in itertools.combinations(models, 2)
            if any((a.sha256, b.sha256, k) not in done for k in cfg.label_counts)]
    with make_progress(progress) as bar:
        task = bar.add_task("model pairs", total=len(todo))
        for a, b in todo:
            table.append(_pair_rows(a, b, cfg))
            bar.advance(task)
    shas = {m.sha256 for m in models}
    df = table.frame()
    df = df[df["sha_a"].isin(shas) & df["sha_b"].isin(shas)].reset_index(drop=True)
    widths = {m.name: m.width for m in models}
    main = df[(df["k"] == cfg.main_k) & df["width"].notna()]
    claims = judge_claims(main, widths, n_boot=cfg.n_boot, seed=cfg.boot_seed,
                          dissimilar=cfg.dissimilar)
    claims["k"] = cfg.main_k
    (out / "claims.json").write_text(json.dumps(jsonable(claims), indent=2))
    summarize_widths(df, cfg.main_k).to_csv(out / "summary.csv", index=False)
    plot_lm_figures(df, cfg.main_k, out)
    return df, claims
