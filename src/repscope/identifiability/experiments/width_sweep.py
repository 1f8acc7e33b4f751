"""Width sweep of Nielsen et al. (NeurIPS 2025): Fig. 3 right and Fig. 16 right.

For every (K, length-normalisation variant, width) and every seed an MLP
softmax model is trained on the radial data (:mod:`.synthetic`); every pair of
seeds is then compared on the test set with ``d_KL``, ``d^λ_LLV`` (λ = 1e-5,
max/max) and ``d_{f,g}``.

* Fig. 3 right: mean ± SD of d_LLV and d_{f,g} against width, for the variant
  without length fixing, over the pairs whose two seeds both reach test
  accuracy > 0.9; a width is shown only when at least ``min_seeds`` seeds qualify.
* Fig. 16 right: d_LLV against d_{f,g} for every pair with ``d_LLV < 1/(2M)`` and
  the bound line ``2M·d_LLV``.

Finding reproduced: wider networks are closer in d_LLV and more similar in
d_{f,g}.  Reference (authors' checkpoints, 5 seeds, K = 4): mean d_LLV ≈ 0.45 at
width 16 → ≈ 0.17 at width 128; mean d_{f,g} ≈ 0.10 → ≈ 0.016.

Output directory: ``models/`` (one ``.npz`` with test embeddings, unembeddings,
accuracy and loss logs, and one ``.pt`` with the f and g weights per seed),
``seeds.csv`` (one row per model), ``pairs.csv`` (one row per pair),
``summary.csv``, ``fig3_right.{png,svg}``, ``fig16_right.{png,svg}``.  A re-run
skips models and pairs already present.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.identifiability.experiments.common import (
    ResultsTable,
    check_config,
    make_progress,
    pair_metrics,
    pick_device,
)
from repscope.identifiability.experiments.synthetic import radial_data, train_stack
from repscope.identifiability.model import SoftmaxModel
from repscope.identifiability.plots import plot_bound_scatter, plot_width_sweep

__all__ = [
    "PRESETS",
    "SweepConfig",
    "run_width_sweep",
    "summarize",
    "summary_json",
    "variant_name",
]


@dataclass(frozen=True)
class SweepConfig:
    """Settings of a width sweep (see :data:`PRESETS`)."""

    classes: tuple[int, ...] = (4,)
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    seeds: int = 5
    variants: tuple[tuple[float, float], ...] = ((0.0, 0.0),)  # (fix_g, fix_f)
    dim: int = 2
    steps: int = 15_000
    lr: float = 1e-4
    batch_size: int = 128
    n_train: int = 20_000
    n_test: int = 2_000
    data_seed: int = 0
    log_every: int = 500
    eval_every: int = 2_000
    n_candidates: int = 200
    search_seed: int = 0
    acc_threshold: float = 0.9
    min_seeds: int = 5

    def validate(self) -> None:
        if self.seeds < 2:
            raise InvalidParameterError("a width sweep needs at least 2 seeds (pairs)")
        if any(k < self.dim + 2 for k in self.classes):
            raise InvalidParameterError(
                f"every K must be >= M+2 = {self.dim + 2} (d_SVD(f) needs M labels besides "
                "the pivot and the left-out label)"
            )
        if any(w < 1 for w in self.widths) or self.steps < 1:
            raise InvalidParameterError("widths and steps must be positive")

    # settings that change trained models or pair results: a resumed run must match them
    RESUME_KEYS = ("dim", "steps", "lr", "batch_size", "n_train", "n_test", "data_seed",
                   "n_candidates", "search_seed")


PRESETS: dict[str, SweepConfig] = {
    # the paper's grid (K = 4, 6, 10, 18; 20 seeds; four length-normalisation variants)
    "paper": SweepConfig(
        classes=(4, 6, 10, 18),
        widths=(16, 32, 64, 128, 256),
        seeds=20,
        variants=((0.0, 0.0), (20.0, 0.0), (0.0, 20.0), (20.0, 20.0)),
        steps=15_000,
        lr=1e-4,
    ),
    # minutes on 2 CPU cores: K = 4, 5 seeds; lr 1e-3 converges in 2,000 steps
    "quick": SweepConfig(
        classes=(4,),
        widths=(16, 32, 64, 128, 256),
        seeds=5,
        steps=2_000,
        lr=1e-3,
        min_seeds=3,
    ),
}


def variant_name(fix_g: float, fix_f: float) -> str:
    """``"g0_f0"`` (no length fixing), ``"g20_f0"`` (g rescaled to norm 20), …"""
    return f"g{fix_g:g}_f{fix_f:g}"


def _model_path(out: Path, k: int, variant: str, width: int, seed: int) -> Path:
    return out / "models" / f"K{k}_{variant}_w{width}_seed{seed}"


def _advance(bar: Any, task: Any, per_step: int, steps: int) -> None:
    bar.advance(task, steps * per_step)


def _train_missing(out: Path, cfg: SweepConfig, device: Any, bar: Any, task: Any,
                   seeds_table: ResultsTable) -> None:
    import torch

    done = seeds_table.done()
    for k in cfg.classes:
        data = None
        for (fix_g, fix_f), width in itertools.product(cfg.variants, cfg.widths):
            var = variant_name(fix_g, fix_f)
            missing = [s for s in range(cfg.seeds)
                       if not _model_path(out, k, var, width, s).with_suffix(".npz").exists()
                       or (k, var, width, s) not in done]
            if not missing:
                continue
            if data is None:
                data = (*radial_data(cfg.n_train, k, cfg.data_seed),
                        *radial_data(cfg.n_test, k, cfg.data_seed + 1))
            bar.update(task, description=f"training K={k} {var} w={width} ({len(missing)} seeds)")
            res = train_stack(
                missing, *data, n_classes=k, width=width, dim=cfg.dim, steps=cfg.steps,
                lr=cfg.lr, batch_size=cfg.batch_size, fix_g=fix_g, fix_f=fix_f,
                data_seed=cfg.data_seed, log_every=cfg.log_every, eval_every=cfg.eval_every,
                device=device, on_step=functools.partial(_advance, bar, task, len(missing)),
            )
            rows = []
            for i, s in enumerate(res.seeds):
                path = _model_path(out, k, var, width, s)
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path.with_suffix(".npz"), F_test=res.F_test[i], G=res.G[i],
                         accuracy=res.accuracy[i], test_loss=res.test_loss[i],
                         train_loss_log=res.train_loss_log[:, i],
                         test_loss_log=res.test_loss_log[:, i])
                torch.save({"f": res.f_state[i], "g": res.g_state[i], "fix_g": fix_g,
                            "fix_f": fix_f, "n_classes": k, "width": width, "seed": s},
                           path.with_suffix(".pt"))
                rows.append({"n_classes": k, "variant": var, "width": width, "seed": s,
                             "accuracy": float(res.accuracy[i]),
                             "test_loss": float(res.test_loss[i])})
            seeds_table.append(rows)


def _load_model(out: Path, k: int, var: str, width: int, seed: int) -> SoftmaxModel | str:
    """The trained model on the test set, or the reason it is unusable (e.g. collapsed)."""
    with np.load(_model_path(out, k, var, width, seed).with_suffix(".npz"),
                 allow_pickle=False) as z:
        try:
            return SoftmaxModel(z["F_test"], z["G"], name=f"K{k} {var} w{width} seed{seed}")
        except RepscopeError as e:
            return f"seed {seed}: {type(e).__name__}: {e}"


def _pair_rows(out: Path, cfg: SweepConfig, bar: Any, task: Any, pairs: ResultsTable,
               seeds_df: Any) -> None:
    done = pairs.done()
    acc = {(int(r.n_classes), str(r.variant), int(r.width), int(r.seed)): float(r.accuracy)
           for r in seeds_df.itertuples(index=False)}
    for k, (fix_g, fix_f), width in itertools.product(cfg.classes, cfg.variants, cfg.widths):
        var = variant_name(fix_g, fix_f)
        todo = [(a, b) for a, b in itertools.combinations(range(cfg.seeds), 2)
                if (k, var, width, a, b) not in done]
        if not todo:
            continue
        bar.update(task, description=f"pairs K={k} {var} w={width}")
        models = {s: _load_model(out, k, var, width, s) for s in range(cfg.seeds)}
        rows = []
        for sa, sb in todo:
            row = {"n_classes": k, "variant": var, "width": width, "seed_a": sa, "seed_b": sb,
                   "acc_a": acc[(k, var, width, sa)], "acc_b": acc[(k, var, width, sb)]}
            bad = [m for m in (models[sa], models[sb]) if isinstance(m, str)]
            if bad:
                row.update({"kl": None, "d_llv": None, "d_fg": None, "error": bad[0]})
            else:
                row.update(pair_metrics(models[sa], models[sb], n_candidates=cfg.n_candidates,
                                        seed=cfg.search_seed))
            rows.append(row)
            bar.advance(task)
        pairs.append(rows)


def summarize(pairs_df: Any, seeds_df: Any, cfg: SweepConfig) -> Any:
    """One row per (K, variant, width): the accuracy-filtered means and SDs of Fig. 3 right."""
    import pandas as pd

    out = []
    for k, (fix_g, fix_f), width in itertools.product(cfg.classes, cfg.variants, cfg.widths):
        var = variant_name(fix_g, fix_f)
        sd = seeds_df[(seeds_df.n_classes == k) & (seeds_df.variant == var)
                      & (seeds_df.width == width) & (seeds_df.seed < cfg.seeds)]
        good = set(sd[sd.accuracy > cfg.acc_threshold].seed.astype(int))
        pdf = pairs_df[(pairs_df.n_classes == k) & (pairs_df.variant == var)
                       & (pairs_df.width == width) & (pairs_df.seed_a < cfg.seeds)
                       & (pairs_df.seed_b < cfg.seeds)]
        sel = pdf[pdf.seed_a.isin(good) & pdf.seed_b.isin(good) & pdf.d_llv.notna()]
        ok = len(good) >= cfg.min_seeds and len(sel) > 0

        def stat(col: str, fn: str, sel: Any = sel, ok: bool = ok) -> float | None:
            if not ok:
                return None
            v = sel[col].to_numpy(float)
            return float(np.mean(v)) if fn == "mean" else float(np.std(v, ddof=1)) \
                if len(v) > 1 else 0.0

        out.append({
            "n_classes": k, "variant": var, "width": width,
            "n_seeds": int(len(sd)), "n_qualified_seeds": len(good),
            "n_pairs": int(len(sel)) if ok else 0,
            "mean_d_llv": stat("d_llv", "mean"), "sd_d_llv": stat("d_llv", "sd"),
            "mean_d_fg": stat("d_fg", "mean"), "sd_d_fg": stat("d_fg", "sd"),
            "mean_kl": stat("kl", "mean"),
            "mean_accuracy": float(sd.accuracy.mean()) if len(sd) else None,
        })
    return pd.DataFrame(out)


def run_width_sweep(
    out_dir: str | Path,
    config: SweepConfig | str = "quick",
    *,
    device: str = "auto",
    progress: bool = True,
    **overrides: Any,
) -> tuple[Any, Any]:
    """Train (or resume), compare all pairs, summarise and draw both figures.

    Parameters
    ----------
    out_dir : output directory.
    config : a :class:`SweepConfig` or a preset name (``"quick"``, ``"paper"``).
    device : ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    progress : show rich progress bars on stderr.
    overrides : fields of :class:`SweepConfig` to change (e.g. ``widths=(8, 64)``).

    Returns
    -------
    (summary, pairs) : pandas DataFrames.
    """
    if isinstance(config, str):
        if config not in PRESETS:
            raise InvalidParameterError(f"unknown preset {config!r}; choose from {list(PRESETS)}")
        config = PRESETS[config]
    cfg = replace(config, **overrides) if overrides else config
    cfg.validate()
    out = Path(out_dir)
    check_config(out, {"experiment": "width-sweep", **asdict(cfg)}, keys=cfg.RESUME_KEYS)
    dev = pick_device(device)
    seeds_table = ResultsTable(out / "seeds.csv", key=("n_classes", "variant", "width", "seed"))
    pairs_table = ResultsTable(out / "pairs.csv",
                               key=("n_classes", "variant", "width", "seed_a", "seed_b"))
    n_models = len(cfg.classes) * len(cfg.variants) * len(cfg.widths) * cfg.seeds
    n_pairs = len(cfg.classes) * len(cfg.variants) * len(cfg.widths) * (
        cfg.seeds * (cfg.seeds - 1) // 2)
    with make_progress(progress) as bar:
        have = sum(1 for r in seeds_table.done() if r[3] < cfg.seeds)
        t_train = bar.add_task("training", total=(n_models - min(have, n_models)) * cfg.steps)
        _train_missing(out, cfg, dev, bar, t_train, seeds_table)
        bar.update(t_train, description="training done")
        have_pairs = len(pairs_table.done())
        t_pairs = bar.add_task("pairs", total=max(n_pairs - have_pairs, 0))
        _pair_rows(out, cfg, bar, t_pairs, pairs_table, seeds_table.frame())
        bar.update(t_pairs, description="pairs done")
    pairs_df = pairs_table.frame()
    summary = summarize(pairs_df, seeds_table.frame(), cfg)
    summary.to_csv(out / "summary.csv", index=False)
    main = summary[(summary.variant == variant_name(0.0, 0.0)) & (summary.n_pairs > 0)]
    if len(main) == 0:  # no unnormalised variant or nothing qualified: plot what exists
        main = summary[summary.n_pairs > 0]
    plot_width_sweep(main, out / "fig3_right")
    mine = _own_rows(pairs_df, cfg)
    ok = mine[mine.d_llv.notna()]
    plot_bound_scatter(ok["d_llv"], ok["d_fg"], cfg.dim, out / "fig16_right",
                       groups=[f"K = {k}" for k in ok["n_classes"]],
                       title="trained models (all variants and widths)")
    return summary, mine


def _own_rows(pairs_df: Any, cfg: SweepConfig) -> Any:
    names = [variant_name(g, f) for g, f in cfg.variants]
    sel = (pairs_df.n_classes.isin(list(cfg.classes)) & pairs_df.variant.isin(names)
           & pairs_df.width.isin(list(cfg.widths)) & (pairs_df.seed_a < cfg.seeds)
           & (pairs_df.seed_b < cfg.seeds))
    return pairs_df[sel].reset_index(drop=True)


def summary_json(summary: Any) -> list[dict[str, Any]]:
    """The ``--json`` objects: one per width (and K / variant when several)."""
    rows = []
    for r in summary.to_dict("records"):
        obj = {
            "width": int(r["width"]), "n_pairs": int(r["n_pairs"]),
            "mean_d_llv": r["mean_d_llv"], "sd_d_llv": r["sd_d_llv"],
            "mean_d_fg": r["mean_d_fg"], "sd_d_fg": r["sd_d_fg"], "mean_kl": r["mean_kl"],
            "n_classes": int(r["n_classes"]), "variant": r["variant"],
            "n_qualified_seeds": int(r["n_qualified_seeds"]),
        }
        rows.append(obj)
    return rows
