"""Time ``repscope.profile`` with statistics on (the default) at the issue's reference shape.

::

    python benchmarks/profile_time.py            # n = 1000, d = 256, 3 runs
    python benchmarks/profile_time.py --n 2000 --d 512 --runs 1

A rotated, noisy copy of data with a decaying spectrum: every chain class is
fitted, nulled (80 permutations) and simulated at its margin.  Prints the
wall time of each run and the median as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import repscope


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.d)) * np.geomspace(3.0, 0.1, args.d)
    q, _ = np.linalg.qr(rng.normal(size=(args.d, args.d)))
    y = x @ q + 0.3 * rng.normal(size=x.shape)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        p = repscope.profile(x, y)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"n": args.n, "d": args.d, "seconds": times,
                      "median_s": statistics.median(times),
                      "verdicts": {c: v.verdict for c, v in p.classes.items()}}, indent=1))


if __name__ == "__main__":
    main()
