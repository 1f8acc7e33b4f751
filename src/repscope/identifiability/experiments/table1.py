"""Table 1 of Nielsen et al. (NeurIPS 2025): KL → 0 while representations stay dissimilar.

For each unembedding norm ρ the permuted-circle pair
(:func:`~repscope.identifiability.permuted_circle_pair`, K = 7, M = 2, 500 inputs
per class) is compared with ``d_KL`` (model 1 ‖ model 2), ``d^λ_LLV`` (λ = 1e-5,
100 candidate input sets), ``m_CCA`` of the embeddings and the worst-case
``d_SVD(f)``.  Reference values (authors' code): KL 0.788 at ρ = 1, peak ≈ 1.06
at ρ = 2, 0.0197 at ρ = 10, ≈ 2.7e-5 at ρ = 20; d_LLV ≈ 1.3175 for every ρ;
m_CCA(f) < 0.002; max d_SVD(f) > 0.999.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repscope.identifiability import m_cca
from repscope.identifiability.constructions import permuted_circle_pair
from repscope.identifiability.dissimilarity import representation_dissimilarity
from repscope.identifiability.experiments.common import ResultsTable, check_config, make_progress
from repscope.identifiability.kl import kl_divergence
from repscope.identifiability.llv import llv_distance
from repscope.identifiability.plots import plot_table1

__all__ = ["DEFAULT_RHOS", "run_table1", "table1_row"]

DEFAULT_RHOS: tuple[float, ...] = tuple(float(r) for r in range(1, 21))
JSON_KEYS = ("rho", "kl", "d_llv", "m_cca_f", "d_svd_f")


def table1_row(
    rho: float, *, n_per_class: int = 500, n_candidates: int = 100, seed: int = 0,
    lam: float = 1e-5,
) -> dict[str, Any]:
    """All quantities of one Table 1 row."""
    t0 = time.perf_counter()
    a, b, _ = permuted_circle_pair(rho, n_per_class=n_per_class, seed=seed)
    kl = kl_divergence(a, b)
    llv = llv_distance(a, b, lam=lam, n_candidates=n_candidates, seed=seed)
    dis = representation_dissimilarity(a, b, llv)
    return {
        "rho": float(rho),
        "kl": kl.forward,
        "kl_reverse": kl.reverse,
        "d_llv": llv.distance,
        "t1": llv.t1,
        "t2": llv.t2,
        "t3": llv.t3,
        "t4": llv.t4,
        "pivot": llv.pivot,
        "left_out": llv.left_out,
        "m_cca_f": m_cca(a.F, b.F),
        "d_svd_f": dis.d_svd_f,
        "d_svd_g": dis.d_svd_g,
        "d_fg": dis.d_fg,
        "seconds": time.perf_counter() - t0,
    }


def run_table1(
    out_dir: str | Path,
    *,
    rhos: Sequence[float] = DEFAULT_RHOS,
    n_per_class: int = 500,
    n_candidates: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> Any:
    """Compute (or resume) the table in ``out_dir/table1.csv`` and draw ``table1.png/.svg``.

    Returns the table for the requested ρ values as a pandas DataFrame.
    """
    out = Path(out_dir)
    check_config(
        out,
        {"experiment": "table1", "n_per_class": n_per_class, "n_candidates": n_candidates,
         "seed": seed},
        keys=("n_per_class", "n_candidates", "seed"),
    )
    table = ResultsTable(out / "table1.csv", key=("rho",))
    done = table.done()
    todo = [float(r) for r in rhos if table.key_of({"rho": float(r)}) not in done]
    with make_progress(progress) as bar:
        task = bar.add_task("table1: rho", total=len(todo))
        for rho in todo:
            row = table1_row(rho, n_per_class=n_per_class, n_candidates=n_candidates, seed=seed)
            table.append([row])
            bar.advance(task)
    df = table.frame()
    wanted = {round(float(r), 12) for r in rhos}
    df = df[df["rho"].round(12).isin(wanted)].sort_values("rho").reset_index(drop=True)
    plot_table1(df, out / "table1")
    return df
