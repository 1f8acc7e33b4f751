"""Fig. 16 left of Nielsen et al. (NeurIPS 2025): d_LLV vs d_{f,g} on perturbed models.

For each K, model 1 is the evenly spaced circle model (ρ = 20, r_min = 5, 500
inputs per class) and model 2 at step ``i`` has its embeddings perturbed by
``(i+1)·noise_K·N(0, I)`` (unembeddings unchanged).  d_LLV uses λ = 1e-5 and
300 candidate input sets at step 0; that input set is reused at every later
step while the label pivot is re-chosen each step.  The figure plots every
pair with ``d_LLV < 1/(2M)`` against the bound line ``2M·d_LLV``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError
from repscope.identifiability.constructions import PERTURBED_NOISE, circle_model
from repscope.identifiability.dissimilarity import representation_dissimilarity
from repscope.identifiability.experiments.common import ResultsTable, check_config, make_progress
from repscope.identifiability.kl import kl_divergence
from repscope.identifiability.llv import llv_distance
from repscope.identifiability.model import SoftmaxModel
from repscope.identifiability.plots import plot_bound_scatter

__all__ = ["PRESETS", "run_perturbed", "summarize_perturbed"]

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"classes": (4, 5, 6, 10, 18), "steps": 250, "n_per_class": 500},
    "quick": {"classes": (4, 6), "steps": 60, "n_per_class": 200},
}


def _perturb(base: SoftmaxModel, noise: float, step: int, seed: int) -> tuple[float, SoftmaxModel]:
    rng = np.random.default_rng([seed, base.n_labels, step])
    scale = (step + 1) * noise
    f = base.F + scale * rng.standard_normal(base.F.shape)
    return scale, SoftmaxModel(f, base.G)


def run_perturbed(
    out_dir: str | Path,
    *,
    classes: Sequence[int] = PRESETS["paper"]["classes"],
    steps: int = 250,
    n_per_class: int = 500,
    noise: dict[int, float] | None = None,
    n_candidates: int = 300,
    seed: int = 0,
    progress: bool = True,
) -> Any:
    """Compute (or resume) ``out_dir/pairs.csv`` (one row per (K, step)) and the figure."""
    noise = {**PERTURBED_NOISE, **(noise or {})}
    for k in classes:
        if k not in noise:
            raise InvalidParameterError(f"no noise level for K={k}; pass noise={{{k}: ...}}")
    out = Path(out_dir)
    check_config(
        out,
        {"experiment": "perturbed", "n_per_class": n_per_class, "n_candidates": n_candidates,
         "seed": seed, "noise": {str(k): v for k, v in noise.items()}},
        keys=("n_per_class", "n_candidates", "seed", "noise"),
    )
    table = ResultsTable(out / "pairs.csv", key=("n_classes", "step"))
    done = table.done()
    todo = {k: [s for s in range(steps) if (int(k), s) not in done] for k in classes}
    with make_progress(progress) as bar:
        task = bar.add_task("perturbed: pairs", total=sum(len(v) for v in todo.values()))
        for k in classes:
            if not todo[k]:
                continue
            base = circle_model(k, 20.0, n_per_class=n_per_class, min_f_length=5.0, seed=seed)
            fixed_set = _step0_input_set(table.frame(), k)
            rows = []
            for step in todo[k]:
                scale, model = _perturb(base, noise[k], step, seed)
                if fixed_set is None and step == 0:
                    llv = llv_distance(base, model, n_candidates=n_candidates, seed=seed)
                    fixed_set = llv.input_set
                else:
                    if fixed_set is None:  # step 0 was not run: draw it first
                        _, m0 = _perturb(base, noise[k], 0, seed)
                        fixed_set = llv_distance(base, m0, n_candidates=n_candidates,
                                                 seed=seed).input_set
                    llv = llv_distance(base, model, input_set=fixed_set)
                dis = representation_dissimilarity(base, model, llv)
                rows.append({
                    "n_classes": k, "step": step, "scale": scale,
                    "kl": kl_divergence(base, model).forward,
                    "d_llv": llv.distance, "t1": llv.t1, "t2": llv.t2, "t3": llv.t3,
                    "t4": llv.t4, "pivot": llv.pivot, "left_out": llv.left_out,
                    "input_set": " ".join(str(i) for i in llv.input_set),
                    "d_svd_f": dis.d_svd_f, "d_svd_g": dis.d_svd_g, "d_fg": dis.d_fg,
                })
                bar.advance(task)
                if len(rows) >= 25:
                    table.append(rows)
                    rows = []
            table.append(rows)
    df = table.frame()
    df = df[df["n_classes"].isin([int(k) for k in classes]) & (df["step"] < steps)]
    df = df.sort_values(["n_classes", "step"]).reset_index(drop=True)
    plot_bound_scatter(df["d_llv"], df["d_fg"], 2, out / "fig16_left",
                       groups=[f"K = {k}" for k in df["n_classes"]],
                       title="constructed models, perturbed embeddings")
    return df


def _step0_input_set(df: Any, k: int) -> tuple[int, ...] | None:
    if len(df) == 0:
        return None
    hit = df[(df["n_classes"] == k) & (df["step"] == 0)]
    if len(hit) == 0:
        return None
    return tuple(int(i) for i in str(hit["input_set"].iloc[0]).split())


def summarize_perturbed(df: Any, dim: int = 2) -> list[dict[str, Any]]:
    """Per K: pairs, pairs below 1/(2M), largest d_{f,g}/d_LLV, bound violations."""
    out = []
    for k, g in df.groupby("n_classes"):
        below = g[g["d_llv"] < 1 / (2 * dim)]
        ratio = (below["d_fg"] / below["d_llv"]).replace([np.inf], np.nan)
        out.append({
            "n_classes": int(k),
            "n_pairs": int(len(g)),
            "n_below": int(len(below)),
            "max_ratio": float(ratio.max()) if len(below) else None,
            "violations_2m": int((below["d_fg"] > 2 * dim * below["d_llv"] + 1e-12).sum()),
            "violations_2": int((g["d_fg"] > 2 * g["d_llv"] + 1e-12).sum()),
        })
    return out
