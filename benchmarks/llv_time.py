"""Time ``repscope llv`` on a model and its exact reparametrisation, and the exact label side.

::

    python benchmarks/llv_time.py                      # K = 1500, M = 64, n = 3000
    python benchmarks/llv_time.py --label-side 4096 10000   # also: label side alone

Model A: ``F ~ N(0, 1)`` (n × M), ``G ~ N(0, 4/M)`` (K × M).  Model B: ``F Aᵀ`` and
``G A⁻¹ + c`` with a random ``A`` of condition number 10³ and a random shift ``c``
(the same distribution), and model C: ``F + 0.3·N(0, 1)`` with A's ``G`` (a different
one).  Each pair is saved as ``.npy`` files and compared by the ``repscope llv``
command in a fresh process (loading, KL, d_LLV, d_{f,g}, m_CCA and printing
included).  Prints the wall times and the values as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _pair(n: int, k: int, m: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, m))
    g = rng.normal(size=(k, m)) * 2 / np.sqrt(m)
    q1, _ = np.linalg.qr(rng.normal(size=(m, m)))
    q2, _ = np.linalg.qr(rng.normal(size=(m, m)))
    a = q1 @ np.diag(np.geomspace(1.0, 1e3, m)) @ q2
    return {"a_f": f, "a_g": g, "b_f": f @ a.T, "b_g": g @ np.linalg.inv(a) + rng.normal(size=m),
            "c_f": f + 0.3 * rng.normal(size=f.shape), "c_g": g}


def _run_cli(paths: list[str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "repscope.cli.main", "llv", *paths, "--json"],
                         capture_output=True, text=True, check=True, env=dict(os.environ))
    return time.perf_counter() - t0, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--k", type=int, default=1500)
    ap.add_argument("--m", type=int, default=64)
    ap.add_argument("--label-side", type=int, nargs=2, metavar=("K", "N"), default=None,
                    help="also time the exact label side alone at K labels and N inputs")
    args = ap.parse_args()
    arrays = _pair(args.n, args.k, args.m, 0)
    report: dict = {"n": args.n, "K": args.k, "M": args.m}
    keys = ("kl", "d_llv", "d_llv_lower", "t1", "t2", "d_fg_lower", "d_fg_upper",
            "d_fg_exact", "m_cca_f", "seconds")
    with tempfile.TemporaryDirectory() as tmp:
        for name in arrays:
            np.save(Path(tmp) / f"{name}.npy", arrays[name])
        for pair, other in (("equivalent", "b"), ("perturbed", "c")):
            paths = [str(Path(tmp) / f"{x}.npy") for x in ("a_f", "a_g", f"{other}_f",
                                                           f"{other}_g")]
            wall, res = _run_cli(paths)
            report[pair] = {"wall_s": wall, **{k: res.get(k) for k in keys},
                            "d_fg_search": res.get("d_fg_search")}
    if args.label_side:
        from repscope.identifiability.label_side import exact_label_side
        from repscope.identifiability.model import log_softmax

        k, n = args.label_side
        rng = np.random.default_rng(1)
        f, g = rng.normal(size=(n, args.m)), rng.normal(size=(k, args.m)) / np.sqrt(args.m)
        la = log_softmax(f @ g.T, axis=1)
        lb = log_softmax((f + 0.3 * rng.normal(size=f.shape)) @ g.T, axis=1)
        t0 = time.perf_counter()
        choice = exact_label_side(la, lb)
        report["label_side"] = {"K": k, "n": n, "seconds": time.perf_counter() - t0,
                                "t1": choice.t1, "rechecked": choice.rechecked}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
