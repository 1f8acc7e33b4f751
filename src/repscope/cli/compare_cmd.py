"""``repscope compare`` and ``repscope profile`` on saved activation files."""

from __future__ import annotations

import enum
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import typer

from repscope.cli.output import check_out, failed_measures, report_failures, write_table
from repscope.core.errors import RepscopeError
from repscope.core.memory import parse_memory
from repscope.inference.options import CI_METHODS, DEFAULT_CI_METHOD
from repscope.storage.results_db import json_default

#: the interval methods of ``--ci-method`` (those :class:`~repscope.inference.options.Stats` has)
CIMethod = enum.Enum("CIMethod", {m: m for m in CI_METHODS}, type=str)


def _load(path: Path, mapped: bool = False) -> np.ndarray:
    """The array in ``path``; a ``.npy`` file memory-mapped when ``mapped`` (a budget was
    given: the measures read only the rows they need)."""
    if not path.exists():
        raise RepscopeError(f"file not found: {path}")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False, mmap_mode="r" if mapped else None)
    if path.suffix in (".csv", ".txt"):
        return np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
    raise RepscopeError(f"{path}: expected a .npy, .csv or .txt file of shape (n, d)")


def _stats(stats: str | None, permutations: int | None, n_boot: int | None,
           ci_method: str | None) -> Any:
    """The :class:`Stats` of ``--stats`` with ``--permutations``, ``--n-boot`` and
    ``--ci-method`` on top (each of these switches its statistic on)."""
    from repscope.inference.options import DEFAULT_BOOTSTRAP, Stats

    st = Stats.parse([s.strip() for s in stats.split(",") if s.strip()] if stats else None)
    if permutations is not None:
        st = replace(st, n_permutations=permutations)
    if n_boot is not None:
        st = replace(st, n_boot=n_boot)
    if ci_method is not None:
        st = replace(st, ci_method=ci_method, n_boot=st.n_boot or DEFAULT_BOOTSTRAP)
    return st


def compare(
    x: Path = typer.Argument(..., help="Representation A: .npy/.csv (n, d)."),
    y: Path = typer.Argument(..., help="Representation B: .npy/.csv (n, d')."),
    measure: list[str] = typer.Option(
        None, "--measure", "-m",
        help="Measure, any case, with parameters as the report writes them: "
        "-m cka -m \"cka\\[kernel=rbf,sigma=0.5]\" (repeatable; default: a core set; "
        "`repscope measures` lists them)."),
    stats: str = typer.Option(None, "--stats",
                              help="permutation, bootstrap, heldout or all (comma-separated)."),
    permutations: int = typer.Option(
        None, "--permutations", min=0,
        help="Permutations of the permutation test (turns it on; 0 = off; raised for the "
        "table's family of tests)."),
    n_boot: int = typer.Option(
        None, "--n-boot", min=0,
        help="Confidence intervals: bootstrap resamples (turns them on; 0 = off)."),
    ci_method: CIMethod = typer.Option(
        None, "--ci-method", "--ci", case_sensitive=False,
        help=f"Interval method (turns intervals on): {DEFAULT_CI_METHOD} (default, "
        "bias-corrected estimate), percentile, bca or normal."),
    seed: int = typer.Option(0, "--seed"),
    memory: str = typer.Option(
        None, "--memory",
        help="Memory budget, e.g. 4GiB (default: half the available memory). Measures that "
        "do not fit exactly in memory run blocked or estimated (column path) or fail "
        "naming the largest n they handle."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON records."),
    out: Path = typer.Option(
        None, "--out", "-o",
        help="Also write the results table to this file: .csv, .json or .parquet."),
) -> None:
    """Compare two saved representations with one or more measures.

    Exits with code 1 when a measure could not be computed (its error is printed),
    2 for bad input.
    """
    from repscope.engine.compare import compare as run_compare

    check_out(out)
    st = _stats(stats, permutations, n_boot, None if ci_method is None else ci_method.value)
    if memory is not None:
        parse_memory(memory)  # a malformed budget is bad input (exit code 2)
    mapped = memory is not None
    table = run_compare(_load(x, mapped), _load(y, mapped), measures=measure or None,
                        stats=st, seed=seed, memory=memory)
    if as_json:
        typer.echo(json.dumps(table.to_records(), default=json_default))
    else:
        typer.echo(str(table))
    if out is not None:
        write_table(table.to_records(), table.columns, out)
        typer.echo(f"{len(table)} rows written to {out}", err=True)
    report_failures(failed_measures(table))


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
