"""Coverage of repscope's confidence intervals for the measures' population values.

Gaussian models with closed-form population values: ``X ~ N(0, Σxx)`` in ``d``
dimensions (eigenvalues ∝ 1/k, a random rotation), ``Y = X A + E`` with
``E ~ N(0, σ² I)``, so ``Σxy = Σxx A`` and ``Σyy = Aᵀ Σxx A + σ² I``.  Population
values:

* linear CKA ``‖Σxy‖²_F / (‖Σxx‖_F ‖Σyy‖_F)``;
* mean CCA: the mean of the singular values of ``Σxx^{-1/2} Σxy Σyy^{-1/2}``;
* NBS ``‖Σxy‖_* / √(tr Σxx tr Σyy)`` and Procrustes ``√(2 − 2 NBS)``;
* regression R² ``tr(Σyx Σxx⁻¹ Σxy) / tr Σyy``;
* distance correlation (squared, bias-corrected) ``0`` for independent X, Y.

For every Monte-Carlo replicate the script draws ``n`` samples and forms the
nominal 95 % interval of each method; coverage is the share of replicates whose
interval contains the population value.  Methods: ``percentile``, ``bca`` and
``normal`` (bootstrap, ``B = 200`` resamples: repscope's default count),
``jackknife-1`` (a candidate: delete-one jackknife bias correction with the
jackknife SE of the plug-in value, ``t_{n−1}``) and ``jackknife`` (repscope's
default: :func:`repscope.inference.intervals.jackknife_interval`).

The moment measures are evaluated in batches from weighted scatter matrices
(bootstrap counts, or 0/1 weights of the kept samples); the intervals come from
the functions in :mod:`repscope.inference.intervals` that ``bootstrap_ci`` uses,
with the random numbers drawn in ``bootstrap_ci``'s order for the replicate's
seed.  Before each cell the script checks, on its first replicate, that the
batched values and intervals equal ``repscope.inference.bootstrap_ci(measure, X,
Y, seed=…, method=…)``, so the coverage measured is that of the shipped code.
Distance correlation and mutual k-NN are computed through ``bootstrap_ci`` itself.

Mutual k-NN has no closed-form population value and is not bias-corrected
(``bias_correctable = False``); its row measures coverage of its expected value
at this n (estimated by the mean over the replicates).

Usage::

    python benchmarks/coverage.py --quick                 # a few minutes: 100 replicates
    python benchmarks/coverage.py --reps 500 --json benchmarks/coverage.json \
        --md benchmarks/coverage.md                       # the full run (about 11 minutes)
    python benchmarks/coverage.py --render benchmarks/coverage.json   # its table again
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
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from scipy import stats as sps

import repscope
from repscope.inference.intervals import (
    JACKKNIFE_GROUPS,
    bca_interval,
    grouped_jackknife,
    jackknife_groups,
    jackknife_interval,
    normal_interval,
    percentile_interval,
)

MOMENT_MEASURES = ("cka", "mean_cca", "nbs", "procrustes", "linear_regression")
METHODS = ("percentile", "bca", "normal", "jackknife-1", "jackknife")
N_BOOT = 200
LEVEL = 0.95
#: the coverage a nominal 95 % interval should reach
BAND = (0.92, 0.97)
#: signal-to-noise ratio tr(AᵀΣxxA) / (d σ²) of each relation
RELATIONS = {"independent": 0.0, "weak": 0.3, "strong": 3.0}


# ----------------------------------------------------------------- models
@dataclass(frozen=True)
class Model:
    """Joint Gaussian law of (X, Y) and its population values."""

    d: int
    relation: str
    cov: np.ndarray  # (2d, 2d)

    @classmethod
    def make(cls, d: int, relation: str, seed: int = 0) -> Model:
        g = np.random.default_rng(seed)
        q, _ = np.linalg.qr(g.normal(size=(d, d)))
        lam = 1.0 / np.arange(1, d + 1)
        sxx = (q * (lam / lam.mean())) @ q.T
        snr = RELATIONS[relation]
        a = g.normal(size=(d, d)) / math.sqrt(d)
        noise = float(np.trace(a.T @ sxx @ a)) / d / snr if snr > 0 else 1.0
        if snr == 0:
            a = np.zeros((d, d))
        sxy = sxx @ a
        syy = a.T @ sxx @ a + noise * np.eye(d)
        return cls(d, relation, np.block([[sxx, sxy], [sxy.T, syy]]))

    def population(self) -> dict[str, float]:
        """Closed-form population values of the moment measures."""
        vals = batched_values(self.cov[None], self.d)
        out = {k: float(v[0]) for k, v in vals.items()}
        if self.relation == "independent":
            out["distance_correlation_sq_unbiased"] = 0.0
        return out

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        z = rng.normal(size=(n, 2 * self.d)) @ np.linalg.cholesky(self.cov).T
        return z[:, : self.d], z[:, self.d:]


# ------------------------------------------------------- batched measures
def _inv_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v / np.sqrt(w)[..., None, :]) @ np.swapaxes(v, -1, -2)


def batched_values(c: np.ndarray, d: int) -> dict[str, np.ndarray]:
    """The moment measures from centred scatter (or covariance) matrices ``c`` (B, 2d, 2d)."""
    sxx, sxy, syy = c[:, :d, :d], c[:, :d, d:], c[:, d:, d:]
    cka = np.sum(sxy**2, axis=(1, 2)) / (
        np.linalg.norm(sxx, axis=(1, 2)) * np.linalg.norm(syy, axis=(1, 2)))
    rho = np.linalg.svd(_inv_sqrt(sxx) @ sxy @ _inv_sqrt(syy), compute_uv=False)
    tx, ty = np.trace(sxx, axis1=1, axis2=2), np.trace(syy, axis1=1, axis2=2)
    nbs = np.clip(np.linalg.svd(sxy, compute_uv=False).sum(1) / np.sqrt(tx * ty), 0.0, 1.0)
    r2 = np.trace(np.swapaxes(sxy, 1, 2) @ np.linalg.solve(sxx, sxy), axis1=1, axis2=2) / ty
    return {"cka": cka, "mean_cca": np.clip(rho.mean(1), 0.0, 1.0), "nbs": nbs,
            "procrustes": np.sqrt(np.clip(2.0 - 2.0 * nbs, 0.0, None)),
            "linear_regression": np.clip(r2, 0.0, 1.0)}


def _centred(raw: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Centred scatter from raw second moments, sums and total weights."""
    mu = s / w[:, None]
    return raw - w[:, None, None] * mu[:, :, None] * mu[:, None, :]


@dataclass
class Resamples:
    """Measure values on the data, the bootstrap resamples and the jackknife subsamples."""

    full: dict[str, float]
    boot: dict[str, np.ndarray]
    loo: dict[str, np.ndarray]  # delete-one
    labels: np.ndarray
    deleted: dict[str, np.ndarray]  # (G,)
    deleted2: dict[str, np.ndarray]  # (G, G)


def resample_values(z: np.ndarray, d: int, seed: int, groups: int = JACKKNIFE_GROUPS) -> Resamples:
    """All resampled values of one replicate, with random numbers drawn as repscope draws them."""
    n = z.shape[0]
    outer = z[:, :, None] * z[:, None, :]  # (n, D, D)
    raw, tot = outer.sum(0), z.sum(0)
    full = {k: float(v[0]) for k, v in
            batched_values(_centred(raw[None], tot[None], np.array([float(n)])), d).items()}
    # bootstrap: bootstrap_ci draws rng.integers(0, n, size=n) per resample
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n)
                       for _ in range(N_BOOT)]).astype(np.float64)
    boot_raw = np.einsum("bn,nij->bij", counts, outer, optimize=True)
    boot = batched_values(_centred(boot_raw, counts @ z, counts.sum(1)), d)
    # delete-one (BCa acceleration, jackknife-1)
    loo = batched_values(_centred(raw[None] - outer, tot[None] - z, np.full(n, n - 1.0)), d)
    # grouped jackknife: jackknife_prepared draws jackknife_groups(n, groups, rng)
    labels = jackknife_groups(n, groups, np.random.default_rng(seed))
    g = int(labels.max()) + 1
    graw = np.stack([outer[labels == k].sum(0) for k in range(g)])
    gsum = np.stack([z[labels == k].sum(0) for k in range(g)])
    gn = np.bincount(labels).astype(np.float64)
    pairs = [(a, b) for a in range(g) for b in range(a + 1, g)]
    sub_raw = np.concatenate([raw - graw, np.stack([raw - graw[a] - graw[b] for a, b in pairs])])
    sub_sum = np.concatenate([tot - gsum, np.stack([tot - gsum[a] - gsum[b] for a, b in pairs])])
    sub_n = np.concatenate([n - gn, np.array([n - gn[a] - gn[b] for a, b in pairs])])
    sub = batched_values(_centred(sub_raw, sub_sum, sub_n), d)
    deleted, deleted2 = {}, {}
    for k, v in sub.items():
        deleted[k] = v[:g]
        m2 = np.zeros((g, g))
        for (a, b), x in zip(pairs, v[g:]):
            m2[a, b] = m2[b, a] = x
        deleted2[k] = m2
    return Resamples(full, boot, loo, labels, deleted, deleted2)


def intervals(r: Resamples, name: str, value_range: tuple[float, float]) -> dict[str, tuple]:
    """(estimate, low, high) of every method for one measure of one replicate."""
    th, boot, loo = r.full[name], r.boot[name], r.loo[name]
    out: dict[str, tuple] = {}
    out["percentile"] = (th, *percentile_interval(boot, LEVEL))
    bca = bca_interval(boot, th, loo, LEVEL)
    out["bca"] = (th, *(bca if bca is not None else out["percentile"][1:]))
    out["normal"] = (th, *normal_interval(th, float(np.std(boot, ddof=1)), LEVEL))
    n = loo.size
    est, var = grouped_jackknife(th, loo, np.ones(n))
    half = float(sps.t.ppf(0.5 + LEVEL / 2, n - 1)) * math.sqrt(max(var, 0.0))
    lo_r, hi_r = value_range
    out["jackknife-1"] = tuple(min(max(v, lo_r), hi_r) for v in (est, est - half, est + half))
    ie = jackknife_interval(th, r.deleted[name], r.deleted2[name], r.labels, LEVEL,
                            value_range=value_range)
    out["jackknife"] = (ie.estimate, ie.low, ie.high)
    return out


def check_against_repscope(x: np.ndarray, y: np.ndarray, r: Resamples, seed: int) -> float:
    """Largest difference between the batched intervals and ``bootstrap_ci``'s (all methods)."""
    worst = 0.0
    for name in MOMENT_MEASURES:
        m = repscope.measure(name)
        ours = intervals(r, name, m.info.value_range)
        for method in ("percentile", "bca", "normal", "jackknife"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = repscope.inference.bootstrap_ci(m, x, y, N_BOOT, seed=seed, method=method)
            got = ours[method]
            want = (ref.estimate, *ref.confidence_interval)
            worst = max(worst, max(abs(a - b) for a, b in zip(got, want)))
    return worst


# ------------------------------------------------------------------ cells
@dataclass
class Tally:
    covered: int = 0
    contains_estimate: int = 0
    width: float = 0.0

    def add(self, est: float, lo: float, hi: float, target: float) -> None:
        self.covered += lo <= target <= hi
        self.contains_estimate += lo <= est <= hi
        self.width += hi - lo


def moment_cell(n: int, d: int, relation: str, reps: int, seed: int) -> list[dict[str, Any]]:
    model = Model.make(d, relation)
    pop = model.population()
    rng = np.random.default_rng([seed, n, d, list(RELATIONS).index(relation)])
    tallies = {(k, mth): Tally() for k in MOMENT_MEASURES for mth in METHODS}
    plug = {k: [] for k in MOMENT_MEASURES}
    ranges = {k: repscope.measure(k).info.value_range for k in MOMENT_MEASURES}
    check = math.nan
    for rep in range(reps):
        x, y = model.sample(n, rng)
        rseed = int(rng.integers(2**31))
        r = resample_values(np.hstack([x, y]), d, rseed)
        if rep == 0:
            check = check_against_repscope(x, y, r, rseed)
            if check > 1e-8:
                raise AssertionError(f"batched intervals differ from bootstrap_ci by {check:.2e}")
        for k in MOMENT_MEASURES:
            plug[k].append(r.full[k])
            for mth, (est, lo, hi) in intervals(r, k, ranges[k]).items():
                tallies[k, mth].add(est, lo, hi, pop[k])
    rows = []
    for k in MOMENT_MEASURES:
        v = np.array(plug[k])
        row: dict[str, Any] = {
            "n": n, "d": d, "relation": relation, "measure": k, "population": pop[k],
            "reps": reps, "bias_over_sd": float((v.mean() - pop[k]) / v.std(ddof=1)),
            "check_max_abs_diff": check,
        }
        for mth in METHODS:
            t = tallies[k, mth]
            row[mth] = t.covered / reps
            row[f"{mth}_contains_estimate"] = t.contains_estimate / reps
            row[f"{mth}_width"] = t.width / reps
        rows.append(row)
    return rows


def direct_cell(name: str, n: int, d: int, relation: str, reps: int, seed: int,
                methods: tuple[str, ...]) -> dict[str, Any]:
    """Coverage through ``bootstrap_ci`` itself (measures without a batched form)."""
    model = Model.make(d, relation)
    rng = np.random.default_rng([seed, n, d, 7, len(name)])
    m = repscope.measure(name)
    res: dict[str, list[tuple[float, float, float]]] = {mth: [] for mth in methods}
    plug = []
    for _ in range(reps):
        x, y = model.sample(n, rng)
        rseed = int(rng.integers(2**31))
        for mth in methods:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                b = repscope.inference.bootstrap_ci(m, x, y, N_BOOT, seed=rseed, method=mth)
            res[mth].append((b.estimate, *b.confidence_interval))
        plug.append(b.statistic)
    v = np.array(plug)
    if m.bias_correctable:
        target, estimand = model.population()[name], "population"
    else:
        target, estimand = float(v.mean()), "mean at n"
    row: dict[str, Any] = {"n": n, "d": d, "relation": relation, "measure": name,
                           "population": target, "estimand": estimand, "reps": reps,
                           "bias_over_sd": float((v.mean() - target) / v.std(ddof=1))}
    for mth in methods:
        t = Tally()
        for est, lo, hi in res[mth]:
            t.add(est, lo, hi, target)
        row[mth] = t.covered / reps
        row[f"{mth}_contains_estimate"] = t.contains_estimate / reps
        row[f"{mth}_width"] = t.width / reps
    return row


# ------------------------------------------------------------------ output
def verdict(coverage: float) -> str:
    """Where a measured coverage lies against the target band [92 %, 97 %]."""
    if coverage < BAND[0]:
        return "**under-covers**"
    return "in band" if coverage <= BAND[1] else "conservative"


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    head = ["n", "d", "relation", "measure", "population", "plug-in bias / SD", *METHODS,
            "width (jackknife)", "holds its estimate", "jackknife"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["n"]), str(r["d"]), r["relation"], r["measure"]
                 + (" (mean at n)" if r.get("estimand") == "mean at n" else ""),
                 f"{r['population']:.3f}", f"{r['bias_over_sd']:+.1f}"]
        cells += [f"{100 * r[m]:.1f}" if m in r else "–" for m in METHODS]
        cells += [f"{r['jackknife_width']:.3f}",
                  f"{100 * r['jackknife_contains_estimate']:.0f} %", verdict(r["jackknife"])]
        lines.append("| " + " | ".join(cells) + " |")
    foot = (f"\nCoverage (%) of nominal 95 % intervals, {meta['reps']} replicates per cell "
            f"(Monte-Carlo SE ≈ {100 * math.sqrt(0.95 * 0.05 / meta['reps']):.1f} points at "
            f"95 %); bootstrap methods with B = {N_BOOT}; jackknife with G = "
            f"{JACKKNIFE_GROUPS} groups.  `{meta['command']}`, {meta['date']}, "
            f"{meta['seconds']:.0f} s.\n")
    return "\n".join(lines) + "\n" + foot


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 replicates, fewer cells")
    ap.add_argument("--reps", type=int, default=None, help="replicates per cell (default 500)")
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--json", default=None, help="write the rows and metadata to this file")
    ap.add_argument("--md", default=None, help="write the markdown table to this file")
    ap.add_argument("--render", default=None, metavar="JSON",
                    help="only print (and with --md write) the table of a saved --json run")
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render, encoding="utf-8") as f:
            saved = json.load(f)
        md = markdown(saved["rows"], saved["meta"])
        print(md)
        if args.md:
            with open(args.md, "w", encoding="utf-8") as f:
                f.write(md)
        return 0
    reps = args.reps or (100 if args.quick else 500)
    if args.quick:
        cells = [(40, 10, rel) for rel in RELATIONS] + [(100, 10, "weak")]
        direct: list[tuple] = [("distance_correlation_sq_unbiased", 40, 10, "independent")]
    else:
        cells = [(n, 10, rel) for n in (40, 100, 400) for rel in RELATIONS]
        cells += [(n, 40, rel) for n in (100, 400) for rel in ("weak", "strong")]
        direct = [("distance_correlation_sq_unbiased", 40, 10, "independent"),
                  ("distance_correlation_sq_unbiased", 100, 10, "independent"),
                  ("mutual_knn", 100, 10, "strong")]
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for n, d, rel in cells:
        t = time.perf_counter()
        rows += moment_cell(n, d, rel, reps, args.seed)
        print(f"n={n:4d} d={d:3d} {rel:11s} " + "  ".join(
            f"{r['measure']}: pct {100 * r['percentile']:.0f} jk {100 * r['jackknife']:.1f}"
            for r in rows[-len(MOMENT_MEASURES):]) + f"  ({time.perf_counter() - t:.0f} s)",
            flush=True)
    for name, n, d, rel in direct:
        t = time.perf_counter()
        methods = ("percentile", "jackknife")
        rows.append(direct_cell(name, n, d, rel, reps, args.seed, methods))
        r = rows[-1]
        print(f"n={n:4d} d={d:3d} {rel:11s} {name}: pct {100 * r['percentile']:.0f} "
              f"jk {100 * r['jackknife']:.1f}  ({time.perf_counter() - t:.0f} s)", flush=True)
    meta = {
        "command": "python benchmarks/coverage.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "reps": reps, "n_boot": N_BOOT, "groups": JACKKNIFE_GROUPS, "level": LEVEL,
        "seed": args.seed, "seconds": time.perf_counter() - t0,
        "repscope": repscope.__version__, "numpy": np.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
    }
    md = markdown(rows, meta)
    print(md)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if args.md:
        with open(args.md, "w", encoding="utf-8") as f:
            f.write(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
