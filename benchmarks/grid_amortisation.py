"""All-pairs amortisation: ``repscope.grid`` vs looping the single-pair calls.

A layer × layer grid of two models × L layers (every layer of model A against
every layer of model B) with a set of measures, timed in one run two ways:

* loop: ``repscope.measure(name, **params)(X, Y)`` for every pair (both orders
  for asymmetric measures), i.e. what a user writes without ``grid``;
* grid: one ``repscope.grid(reps, measures)`` call (in-process).

It checks that both give the same values (relative difference printed) and
prints the time ratio.  Usage::

    python benchmarks/grid_amortisation.py                    # defaults below
    python benchmarks/grid_amortisation.py --n 2000 --d 384 --layers 7
    python benchmarks/grid_amortisation.py --measures cka,procrustes,rsa

Data: each model is a random tanh MLP applied to the same 2-D latent inputs
plus noise, so layers are correlated (realistic spectra, no rank deficiency).
The default measures are the ten used in the issue's target (see MEASURES).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from typing import Any

import numpy as np

import repscope

#: (label, name, params): the ten measures of the issue's target, as in benchmarks/run.py —
#: linear CKA (biased, debiased), mean CCA, mean squared CCA, SVCCA, Procrustes (distance,
#: angular), NBS, regression R² and RSA (correlation RDM, Spearman)
MEASURES: list[tuple[str, str, dict[str, Any]]] = [
    ("cka", "cka", {}),
    ("cka_debiased", "cka", {"debiased": True}),
    ("mean_cca", "mean_cca", {}),
    ("mean_sq_cca", "mean_sq_cca", {}),
    ("svcca", "svcca", {}),
    ("procrustes", "procrustes", {}),
    ("procrustes_angular", "procrustes_angular", {}),
    ("nbs", "nbs", {}),
    ("linear_regression", "linear_regression", {}),
    ("rsa", "rsa", {}),
]

#: other labelled measures usable with --measures
EXTRA: list[tuple[str, str, dict[str, Any]]] = [
    ("cka_rbf", "cka", {"kernel": "rbf"}),
]


def make_reps(n: int, widths: list[int], layers: int, dtype: str, seed: int = 0
              ) -> dict[tuple[str, str], np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 16))
    reps = {}
    for model, d in zip(("a", "b"), widths):
        h = z
        for layer in range(layers):
            w = rng.standard_normal((h.shape[1], d)) / math.sqrt(h.shape[1])
            h = np.tanh(h @ w) + 0.05 * rng.standard_normal((n, d))
            reps[(model, f"l{layer}")] = h.astype(dtype)
    return reps


def parse_measures(text: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    if not text:
        return MEASURES
    known = {label: (label, name, params) for label, name, params in MEASURES + EXTRA}
    out = []
    for item in text.split(","):
        item = item.strip()
        out.append(known.get(item, (item, item, {})))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="samples (default 2000)")
    ap.add_argument("--d", default="256,384",
                    help="layer width of model a,b (one number for both; default 256,384)")
    ap.add_argument("--layers", type=int, default=7, help="layers per model (default 7)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--measures", default=None, help="comma-separated labels or names")
    ap.add_argument("--repeats", type=int, default=1,
                    help="time each way this many times, alternating, and keep the fastest "
                         "(robust to other load on the machine; default 1)")
    ap.add_argument("--json", default=None, help="also write the result as JSON here")
    args = ap.parse_args(argv)

    widths = [int(x) for x in args.d.split(",")]
    if len(widths) == 1:
        widths *= 2
    specs = parse_measures(args.measures)
    reps = make_reps(args.n, widths, args.layers, args.dtype)
    a_keys = [k for k in reps if k[0] == "a"]
    b_keys = [k for k in reps if k[0] == "b"]
    measures = [repscope.measure(name, **params) for _, name, params in specs]

    print(f"repscope {repscope.__version__}, numpy {np.__version__}, python "
          f"{platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}")
    print(f"grid: 2 models x {args.layers} layers ({len(a_keys) * len(b_keys)} cross pairs), "
          f"n={args.n}, widths={widths}, {args.dtype}; {len(specs)} measures: "
          f"{', '.join(label for label, _, _ in specs)}")
    warnings.simplefilter("ignore")

    loop_values: dict[tuple[Any, ...], float] = {}
    per_measure: dict[str, float] = {}
    t_loop = t_grid = math.inf
    for _ in range(max(1, args.repeats)):
        t_loop0 = time.perf_counter()
        for (label, _, _), m in zip(specs, measures):
            t0 = time.perf_counter()
            for ka in a_keys:
                for kb in b_keys:
                    for x, y in ([(ka, kb)] if m.info.symmetric else [(ka, kb), (kb, ka)]):
                        loop_values[(label, x, y)] = m(reps[x], reps[y])
            per_measure[label] = min(per_measure.get(label, math.inf),
                                     time.perf_counter() - t0)
        t_loop = min(t_loop, time.perf_counter() - t_loop0)
        t0 = time.perf_counter()
        table = repscope.grid(reps, measures, fitted="in_sample")  # like the loop
        t_grid = min(t_grid, time.perf_counter() - t0)

    labels = {id(m): label for (label, _, _), m in zip(specs, measures)}
    worst = 0.0
    by_params = {(m.info.name, json.dumps(m.params, sort_keys=True, default=str)): labels[id(m)]
                 for m in measures}
    for r in table:
        label = by_params[(r["measure"], json.dumps(r["params"], sort_keys=True, default=str))]
        ref = loop_values[(label, (r["model_a"], r["layer_a"]), (r["model_b"], r["layer_b"]))]
        worst = max(worst, abs(r["value"] - ref) / max(abs(ref), 1e-300))

    # each measure's own grid: how far its per-pair work can be amortised
    grid_alone: dict[str, float] = {}
    for (label, _, _), m in zip(specs, measures):
        t0 = time.perf_counter()
        repscope.grid(reps, [m], fitted="in_sample")
        grid_alone[label] = time.perf_counter() - t0
    print(f"{'measure':20s} {'loop s':>9s} {'own grid s':>11s} {'ratio':>7s}")
    for label, _, _ in specs:
        print(f"{label:20s} {per_measure[label]:9.2f} {grid_alone[label]:11.2f} "
              f"{per_measure[label] / grid_alone[label]:6.1f}x")
    print(f"loop total {t_loop:.2f} s, grid {t_grid:.2f} s, {len(table)} rows, "
          f"max relative difference {worst:.1e}")
    ratio = t_loop / t_grid
    print(f"grid speed-up over the loop: {ratio:.1f}x (target >= 10x)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"n": args.n, "widths": widths, "layers": args.layers,
                       "dtype": args.dtype, "measures": [s[0] for s in specs],
                       "loop_seconds": t_loop, "grid_seconds": t_grid, "speedup": ratio,
                       "per_measure_loop_seconds": per_measure,
                       "per_measure_grid_seconds": grid_alone, "max_rel_diff": worst}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
