"""Do the estimated paths cover?  Coverage of their 95 % intervals where exact fits (issue 19).

    python benchmarks/big_n_coverage.py [--n 6000] [--d 64] [--seeds 50] [--json F]

On one fixed pair of representations (n × d, structured as in ``big_n.py``) this
computes the exact in-memory value of RSA, mutual k-NN (k = 10) and RBF CKA, then
forces each estimated path (``path="estimated"``) with seeds 0 … seeds−1 and counts
how often the 95 % interval contains the exact value.  The estimators run at sizes
smaller than their defaults so that n holds several subsets (RSA: 4 subsets of
n/6 stimuli; CKA: 4 subsets of n/6 samples; mutual k-NN: 500 sampled queries).
For CKA the reference is the exact value of the same estimand (the debiased CKA with
the bandwidth of the seeded 2000-row sample); the biased in-memory value, a different
estimand at finite n, is reported too.  The mean signed error of the estimates (their
bias at this subset size) is printed for each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import repscope
from repscope.measures.kernel_estimate import fixed_bandwidth


def data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 32))
    x = np.tanh(z @ rng.standard_normal((32, d)) / 4) + 0.3 * rng.standard_normal((n, d))
    y = z @ rng.standard_normal((32, d)) / 4 + 0.5 * rng.standard_normal((n, d))
    return x.astype(np.float32), y.astype(np.float32)


def _cka_same_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased RBF CKA at the bandwidths the estimate fixes (exact, in memory)."""
    from repscope.measures._kernels import sq_distances, u_center, u_inner

    ks = []
    for a, who in ((x, "X"), (y, "Y")):
        bw = fixed_bandwidth(a, 0.8, who)
        a64 = np.asarray(a, dtype=np.float64)
        ks.append(u_center(np.exp(-sq_distances(a64) / (2 * bw * bw))))
    k, l = ks
    return float(u_inner(k, l) / np.sqrt(u_inner(k, k) * u_inner(l, l)))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    x, y = data(a.n, a.d)
    size = a.n // 6
    cases = {}
    rsa = repscope.measure("rsa", path="estimated")
    rsa.subset_size, rsa.subsets = size, 4
    knn = repscope.measure("mutual_knn", k=10, path="estimated")
    knn.queries = 500
    cka = repscope.measure("cka", kernel="rbf", path="estimated")
    cka.subset_size, cka.subsets = size, 4
    t0 = time.perf_counter()
    cka_ref = _cka_same_bandwidth(x, y)
    refs = {"rsa": repscope.measure("rsa")(x, y),
            "mutual_knn": repscope.measure("mutual_knn", k=10)(x, y),
            "cka_rbf": cka_ref}
    biased = repscope.measure("cka", kernel="rbf")(x, y)
    print(f"exact values ({time.perf_counter() - t0:.1f} s): {refs}; biased RBF CKA at n: "
          f"{biased:.5f}", flush=True)
    for key, m in (("rsa", rsa), ("mutual_knn", knn), ("cka_rbf", cka)):
        t0 = time.perf_counter()
        ests = [m.estimate(x, y, seed=s) for s in range(a.seeds)]
        vals = np.array([e.value for e in ests])
        lo = np.array([e.ci_low for e in ests])
        hi = np.array([e.ci_high for e in ests])
        ref = refs[key]
        rec = {"exact": ref, "coverage": float(np.mean((lo <= ref) & (ref <= hi))),
               "mean_error": float(vals.mean() - ref),
               "sd_of_estimates": float(vals.std(ddof=1)),
               "mean_ci_width": float(np.mean(hi - lo)), "seeds": a.seeds,
               "seconds": time.perf_counter() - t0}
        if key == "cka_rbf":
            rec["biased_exact"] = biased
            rec["coverage_of_biased"] = float(np.mean((lo <= biased) & (biased <= hi)))
        cases[key] = rec
        print(f"{key}: coverage {rec['coverage']:.2f} over {a.seeds} seeds, mean error "
              f"{rec['mean_error']:+.2e} (sd of estimates {rec['sd_of_estimates']:.2e}), "
              f"mean CI width {rec['mean_ci_width']:.4f}"
              + (f", coverage of the biased value {rec['coverage_of_biased']:.2f}"
                 if key == "cka_rbf" else ""), flush=True)
    out = {"n": a.n, "d": a.d, "subset_size": size, "cases": cases}
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
