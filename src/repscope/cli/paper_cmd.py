"""``repscope paper …`` (the experiments of Nielsen et al., NeurIPS 2025) and ``repscope llv``.

Every experiment shows progress on stderr, writes resumable tidy CSV tables and
PNG + SVG figures into ``--out`` (default ``repscope-out/paper/<experiment>``), and
prints either a table or, with ``--json``, machine-readable results on stdout.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from repscope.core.errors import InvalidParameterError

app = typer.Typer(
    help="Re-run the experiments of Nielsen et al., 'When does closeness in distribution "
    "imply representational similarity?' (NeurIPS 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_OUT = Path("repscope-out") / "paper"
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Discard earlier results in --out.")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bars.")]
ThreadsOpt = Annotated[int, typer.Option(help="torch CPU threads.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when available), cpu or cuda.")]
_OWN = ("config.json", "table1.csv", "pairs.csv", "seeds.csv", "summary.csv")


def _ints(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        vals = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise InvalidParameterError(
            f"{what} must be comma-separated integers, got {text!r}"
        ) from None
    if not vals:
        raise InvalidParameterError(f"{what} is empty")
    return vals


def _floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise InvalidParameterError(
            f"{what} must be comma-separated numbers, got {text!r}"
        ) from None
    if not vals:
        raise InvalidParameterError(f"{what} is empty")
    return vals


def _fresh(out: Path) -> None:
    """Remove what a previous run of an experiment wrote into ``out`` (nothing else)."""
    if not out.exists():
        return
    for name in _OWN:
        (out / name).unlink(missing_ok=True)
    for pattern in ("fig*.png", "fig*.svg", "table1.png", "table1.svg"):
        for p in out.glob(pattern):
            p.unlink()
    if (out / "models").is_dir():
        shutil.rmtree(out / "models")


def _emit_json(obj: Any) -> None:
    from repscope.identifiability.experiments.common import jsonable

    typer.echo(json.dumps(jsonable(obj), indent=2))


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
    return str(v)


def _print_table(title: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in cols))
    _console().print(table)


# ------------------------------------------------------------------ table1
@app.command("table1")
def table1(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = _OUT / "table1",
    rho: Annotated[str | None, typer.Option(help="Comma-separated ρ values (default 1..20).")]
    = None,
    n_per_class: Annotated[int, typer.Option(help="Inputs per class.")] = 500,
    n_candidates: Annotated[int, typer.Option(help="Input sets searched.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the construction and the search.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per ρ.")] = False,
    fresh: FreshOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Table 1: KL → 0 as ρ grows while d_LLV and d_SVD(f) stay put (K = 7, M = 2)."""
    from repscope.identifiability.experiments.table1 import DEFAULT_RHOS, JSON_KEYS, run_table1

    if fresh:
        _fresh(out)
    rhos = _floats(rho, "--rho") or DEFAULT_RHOS
    df = run_table1(out, rhos=rhos, n_per_class=n_per_class, n_candidates=n_candidates,
                    seed=seed, progress=not no_progress)
    rows = df.to_dict("records")
    if as_json:
        _emit_json([{k: r[k] for k in JSON_KEYS} for r in rows])
        return
    _print_table("Table 1: permuted circle models (K = 7, M = 2)", rows,
                 ["rho", "kl", "d_llv", "m_cca_f", "d_svd_f"])
    typer.echo(f"results: {out / 'table1.csv'}; figure: {out / 'table1.png'} (+ .svg)")


# ------------------------------------------------------------------ width sweep
@app.command("width-sweep")
def width_sweep(
    preset: Annotated[str, typer.Option(help="quick (minutes, CPU) or paper.")] = "quick",
    out: Annotated[Path | None, typer.Option(
        help="Output directory (default repscope-out/paper/width-sweep-<preset>).")] = None,
    classes: Annotated[str | None, typer.Option(help="Comma-separated K values.")] = None,
    widths: Annotated[str | None, typer.Option(help="Comma-separated widths.")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per configuration.")] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.")] = None,
    n_train: Annotated[int | None, typer.Option(help="Training points.")] = None,
    n_test: Annotated[int | None, typer.Option(help="Test points.")] = None,
    n_candidates: Annotated[int | None, typer.Option(help="Input sets searched.")] = None,
    min_seeds: Annotated[int | None, typer.Option(
        help="Seeds with accuracy > 0.9 a width needs to enter Fig. 3.")] = None,
    threads: ThreadsOpt = 2,
    device: DeviceOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per width.")] = False,
    fresh: FreshOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Fig. 3 right and Fig. 16 right: wider MLPs are closer in d_LLV and in d_{f,g}."""
    from repscope.identifiability.experiments.common import set_threads
    from repscope.identifiability.experiments.width_sweep import (
        PRESETS,
        run_width_sweep,
        summary_json,
    )

    if preset not in PRESETS:
        raise InvalidParameterError(f"unknown preset {preset!r}; choose from {list(PRESETS)}")
    out = out or _OUT / f"width-sweep-{preset}"
    if fresh:
        _fresh(out)
    overrides: dict[str, Any] = {
        k: v for k, v in {
            "classes": _ints(classes, "--classes"), "widths": _ints(widths, "--widths"),
            "seeds": seeds, "steps": steps, "lr": lr, "n_train": n_train, "n_test": n_test,
            "n_candidates": n_candidates, "min_seeds": min_seeds,
        }.items() if v is not None
    }
    set_threads(threads)
    t0 = time.perf_counter()
    summary, _ = run_width_sweep(out, preset, device=device, progress=not no_progress,
                                 **overrides)
    rows = summary_json(summary)
    if as_json:
        _emit_json(rows)
        return
    _print_table(f"width sweep ({preset}); pairs with both seeds' accuracy > 0.9", rows,
                 ["n_classes", "variant", "width", "n_pairs", "mean_d_llv", "sd_d_llv",
                  "mean_d_fg", "sd_d_fg", "mean_kl"])
    typer.echo(f"{time.perf_counter() - t0:.0f} s; results and figures in {out}")


# ------------------------------------------------------------------ perturbed
@app.command("perturbed")
def perturbed(
    preset: Annotated[str, typer.Option(help="paper or quick.")] = "paper",
    out: Annotated[Path, typer.Option(help="Output directory.")] = _OUT / "perturbed",
    classes: Annotated[str | None, typer.Option(help="Comma-separated K values.")] = None,
    steps: Annotated[int | None, typer.Option(help="Perturbation steps per K.")] = None,
    n_per_class: Annotated[int | None, typer.Option(help="Inputs per class.")] = None,
    n_candidates: Annotated[int, typer.Option(help="Input sets searched.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of models, noise and search.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON summary per K.")] = False,
    fresh: FreshOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Fig. 16 left: d_LLV vs d_{f,g} for perturbed constructed models, with the 2M·ε line."""
    from repscope.identifiability.experiments.perturbed import (
        PRESETS,
        run_perturbed,
        summarize_perturbed,
    )

    if preset not in PRESETS:
        raise InvalidParameterError(f"unknown preset {preset!r}; choose from {list(PRESETS)}")
    p = PRESETS[preset]
    if fresh:
        _fresh(out)
    df = run_perturbed(
        out, classes=_ints(classes, "--classes") or p["classes"], steps=steps or p["steps"],
        n_per_class=n_per_class or p["n_per_class"], n_candidates=n_candidates, seed=seed,
        progress=not no_progress,
    )
    rows = summarize_perturbed(df)
    if as_json:
        _emit_json(rows)
        return
    _print_table("perturbed constructed models (M = 2)", rows,
                 ["n_classes", "n_pairs", "n_below", "max_ratio", "violations_2m",
                  "violations_2"])
    typer.echo(f"results: {out / 'pairs.csv'}; figure: {out / 'fig16_left.png'} (+ .svg)")


# ------------------------------------------------------------------ cifar10
@app.command("cifar10")
def cifar10(
    data_dir: Annotated[Path, typer.Option(
        help="Directory with the CIFAR-10 python batches "
        "(data_batch_1..5, test_batch, batches.meta).")],
    out: Annotated[Path, typer.Option(help="Output directory.")] = _OUT / "cifar10",
    dims: Annotated[str, typer.Option(help="Comma-separated bottleneck sizes M.")] = "2,3,5",
    seeds: Annotated[int, typer.Option(help="Seeds per M.")] = 10,
    steps: Annotated[int, typer.Option(help="Training steps per model.")] = 20_000,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-4,
    base_width: Annotated[int, typer.Option(help="ResNet-18 stem width (64 = standard).")]
    = 64,
    eval_every: Annotated[int, typer.Option(help="Steps between test losses.")] = 2_000,
    max_train: Annotated[int | None, typer.Option(help="Use the first N train images.")] = None,
    max_test: Annotated[int | None, typer.Option(help="Use the first N test images.")] = None,
    n_candidates: Annotated[int, typer.Option(help="Input sets searched.")] = 200,
    threads: ThreadsOpt = 2,
    device: DeviceOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per pair.")] = False,
    fresh: FreshOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Fig. 3 left and Fig. 5: ResNet-18s on CIFAR-10, pairwise m_CCA and loss differences."""
    from repscope.identifiability.experiments.cifar10 import CifarConfig, load_cifar10, run_cifar10
    from repscope.identifiability.experiments.common import set_threads

    data = load_cifar10(data_dir)  # fails early, with the data-set message, before any write
    if fresh:
        _fresh(out)
    set_threads(threads)
    cfg = CifarConfig(dims=_ints(dims, "--dims") or (2, 3, 5), seeds=seeds, steps=steps,
                      batch_size=batch_size, lr=lr, base_width=base_width,
                      eval_every=eval_every, max_train=max_train, max_test=max_test,
                      n_candidates=n_candidates)
    df = run_cifar10(data, out, cfg, device=device, progress=not no_progress)
    cols = ["dim", "seed_a", "seed_b", "m_cca_f_train", "m_cca_f_test", "m_cca_g",
            "test_loss_a", "test_loss_b", "loss_diff", "kl", "kl_reverse", "d_llv", "d_fg"]
    rows = [{c: r.get(c) for c in cols} for r in df.to_dict("records")]
    if as_json:
        _emit_json(rows)
        return
    _print_table("CIFAR-10 model pairs", rows, cols)
    typer.echo(f"results and figures in {out}")


# ------------------------------------------------------------------ llv
def _load_array(path: Path, what: str) -> Any:
    import numpy as np

    from repscope.identifiability.model import DatasetNotFoundError

    if not path.is_file():
        raise DatasetNotFoundError(f"{what}: no such file {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise InvalidParameterError(f"{what}: {path} is not a NumPy .npy array ({e})") from e
    if hasattr(arr, "files"):  # .npz: take its only array
        if len(arr.files) != 1:
            raise InvalidParameterError(f"{what}: {path} holds {len(arr.files)} arrays; save one")
        arr = arr[arr.files[0]]
    return arr


def llv(
    a_f: Annotated[Path, typer.Argument(help="Model A embeddings F (n × M), .npy.")],
    a_g: Annotated[Path, typer.Argument(help="Model A unembeddings G (K × M), .npy.")],
    b_f: Annotated[Path, typer.Argument(help="Model B embeddings F (n × M), same inputs.")],
    b_g: Annotated[Path, typer.Argument(help="Model B unembeddings G (K × M), same labels.")],
    lam: Annotated[float, typer.Option(help="Weight λ of the scale terms T3, T4.")] = 1e-5,
    n_candidates: Annotated[int, typer.Option(help="Input sets searched.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the input-set search.")] = 0,
    input_set: Annotated[str | None, typer.Option(
        help="Fixed input set x0,x1..xM (no search).")] = None,
    budget: Annotated[int, typer.Option(
        help="Label subsets the d_{f,g} search may evaluate.")] = 20_000,
    max_enumerate: Annotated[int, typer.Option(
        help="Enumerate the label subsets of d_{f,g} when there are at most this many.")]
    = 100_000,
    device: Annotated[str | None, typer.Option(
        help="Compute d_LLV's label side with torch on this device (cuda, cpu).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """KL, d_LLV, d_{f,g} and m_CCA between two softmax-family models saved as arrays.

    d_LLV's label side is exact; its input side and the label subsets of d_{f,g} are
    searched, so d_LLV is an upper bound and d_{f,g} an interval (with the search budget).
    """
    from repscope.identifiability import SoftmaxModel, compare_models

    t0 = time.perf_counter()
    a = SoftmaxModel(_load_array(a_f, "A_F"), _load_array(a_g, "A_G"), name="A")
    b = SoftmaxModel(_load_array(b_f, "B_F"), _load_array(b_g, "B_G"), name="B")
    res = compare_models(a, b, lam=lam, n_candidates=n_candidates, seed=seed,
                         input_set=_ints(input_set, "--input-set"), budget=budget,
                         max_enumerate=max_enumerate, device=device)
    res["seconds"] = time.perf_counter() - t0
    if as_json:
        _emit_json(res)
        return
    table = Table(title=f"A vs B  (n={a.n_inputs}, K={a.n_labels}, M={a.dim})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, label in (("kl", "KL(A ‖ B)"), ("kl_reverse", "KL(B ‖ A)"), ("d_llv", "d_LLV"),
                       ("d_llv_lower", "  lower bound max(T1, λT3)"),
                       ("t1", "  T1 (labels, exact)"), ("t2", "  T2 (inputs, searched)"),
                       ("t3", "  T3"), ("t4", "  T4"), ("d_fg_lower", "d_{f,g} lower end"),
                       ("d_fg_upper", "d_{f,g} upper end"), ("d_svd_f", "  d_SVD(f) found"),
                       ("d_svd_f_upper", "  d_SVD(f) bound"), ("d_svd_g", "  d_SVD(g)"),
                       ("m_cca_f", "m_CCA(F)"), ("m_cca_g", "m_CCA(G)")):
        table.add_row(label, _fmt(res.get(key)))
    table.add_row("pivot / left-out label", f"{res['pivot']} / {res['left_out']}")
    table.add_row("input set", ", ".join(str(i) for i in res["input_set"]))
    _console().print(table)
    typer.echo(f"d_LLV input side: {res['input_search']}")
    if res.get("d_fg") is None:
        typer.echo(f"d_fg undefined: {res.get('d_fg_error')}")
    else:
        exact = "exact" if res["d_fg_exact"] else "an interval"
        typer.echo(f"d_fg is {exact}: {res['d_fg_search']}")
        typer.echo(f"bound check: {res['bound_check']['sentence']}")
    typer.echo(f"{res['seconds']:.1f} s")


# ------------------------------------------------------------------ lm
def _register_lm() -> None:
    from repscope.cli.paper_lm import lm

    app.command("lm")(lm)


_register_lm()
