"""Quick start: compare representations and say in what sense they are alike.

Runs offline in seconds:  python examples/quickstart.py
"""

from __future__ import annotations

import warnings

import numpy as np

import repscope

MEASURES = ["cka", "procrustes", "mean_cca", "svcca", "mutual_knn", "rsa"]


def main() -> None:
    rng = np.random.default_rng(0)
    n = 500
    z = rng.normal(size=(n, 8)) * np.geomspace(4, 0.5, 8)
    x = np.tanh(z @ rng.normal(size=(8, 32)))
    q, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    pairs = {
        "X vs rotated X": x @ q,
        "X vs linearly mixed X": x @ (q * np.geomspace(10, 0.1, 32)),
        "X vs a nonlinear function of its latents": np.maximum(z @ rng.normal(size=(8, 24)), 0),
        "X vs noise": rng.normal(size=(n, 32)),
    }
    print(f"repscope {repscope.__version__}: {len(repscope.list_measures())} measures\n")
    width = max(len(k) for k in pairs)
    print(" " * width + "".join(f"{m:>12}" for m in MEASURES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", repscope.DegeneracyWarning)
        for label, y in pairs.items():
            table = repscope.compare(x, y, measures=MEASURES)
            print(f"{label:<{width}}" + "".join(f"{table.value(m):12.3f}" for m in MEASURES))
        print()
        for label, y in pairs.items():
            print(f"{label}: {repscope.profile(x, y).sentence}")


if __name__ == "__main__":
    main()
