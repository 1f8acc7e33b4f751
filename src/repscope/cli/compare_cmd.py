"""``repscope compare`` and ``repscope profile`` on saved activation files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import typer

from repscope.core.errors import RepscopeError
from repscope.storage.results_db import json_default


def _load(path: Path) -> np.ndarray:
    if not path.exists():
        raise RepscopeError(f"file not found: {path}")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix in (".csv", ".txt"):
        return np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
    raise RepscopeError(f"{path}: expected a .npy, .csv or .txt file of shape (n, d)")


def compare(
    x: Path = typer.Argument(..., help="Representation A: .npy/.csv (n, d)."),
    y: Path = typer.Argument(..., help="Representation B: .npy/.csv (n, d')."),
    measure: list[str] = typer.Option(None, "--measure", "-m",
                                      help="Measure name (repeatable; default: a core set)."),
    stats: str = typer.Option(None, "--stats",
                              help="permutation, bootstrap, heldout or all (comma-separated)."),
    ci: str = typer.Option(None, "--ci",
                           help="Interval method with --stats bootstrap: jackknife (default, "
                                "bias-corrected estimate), percentile, bca or normal."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON records."),
) -> None:
    """Compare two saved representations with one or more measures."""
    from repscope.engine.compare import compare as run_compare
    from repscope.inference.options import Stats

    st: Any = Stats.parse([s.strip() for s in stats.split(",")] if stats else None)
    if ci is not None:
        st = replace(st, ci_method=ci)
    table = run_compare(_load(x), _load(y), measures=measure or None, stats=st, seed=seed)
    if as_json:
        typer.echo(json.dumps(table.to_records(), default=json_default))
    else:
        typer.echo(str(table))


def profile(
    x: Path = typer.Argument(..., help="Representation A: .npy/.csv (n, d)."),
    y: Path = typer.Argument(..., help="Representation B: .npy/.csv (n, d')."),
    outputs_a: Path = typer.Option(None, "--outputs-a",
                                   help="Model A's outputs (n, C) or labels (n,): function class."),
    outputs_b: Path = typer.Option(None, "--outputs-b", help="Model B's outputs or labels."),
    unembeddings_a: Path = typer.Option(
        None, "--unembeddings-a",
        help="Softmax-family models: A's unembeddings G_A (K, d): the softmax class."),
    unembeddings_b: Path = typer.Option(None, "--unembeddings-b",
                                        help="B's unembeddings G_B (K, d') over the same labels."),
    no_stats: bool = typer.Option(False, "--no-stats",
                                  help="Skip the nulls and margin simulations (no verdicts)."),
    permutations: int = typer.Option(None, "--permutations", min=19,
                                     help="Permutations per null (default: enough for Holm)."),
    margin: float = typer.Option(0.05, "--margin",
                                 help="Share of variance that may stay unexplained."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """In which senses are two representations alike? (graded verdicts per invariance class)

    Statistics are on by default: each class's score is compared with its permutation
    null and with its value at the equivalence margin, simulated at these shapes.
    """
    from repscope.inference.profile import profile as run_profile

    if (outputs_a is None) != (outputs_b is None):
        raise RepscopeError("give both --outputs-a and --outputs-b, or neither")
    outputs = (_load_outputs(outputs_a), _load_outputs(outputs_b)) if outputs_a else None
    if (unembeddings_a is None) != (unembeddings_b is None):
        raise RepscopeError("give both --unembeddings-a and --unembeddings-b, or neither")
    gs = (_load(unembeddings_a), _load(unembeddings_b)) if unembeddings_a else None
    p = run_profile(_load(x), _load(y), outputs=outputs, unembeddings=gs, stats=not no_stats,
                    n_permutations=permutations, margin=margin, seed=seed)
    if as_json:
        typer.echo(json.dumps(p.to_dict(), default=json_default))
    else:
        typer.echo(str(p))


def _load_outputs(path: Path) -> np.ndarray:
    if path.suffix == ".npy" and path.exists():
        return np.load(path, allow_pickle=False)
    return _load(path)
