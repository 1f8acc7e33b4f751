"""Quick start: compare representations and print a profile over invariance classes.

Runs offline in seconds:  python examples/quickstart.py
"""

from __future__ import annotations

import warnings

import numpy as np

import repscope


def main() -> None:
    rng = np.random.default_rng(0)
    n = 500
    z = rng.normal(size=(n, 8)) * np.geomspace(4, 0.5, 8)
    x = np.tanh(z @ rng.normal(size=(8, 32)))
    q, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    pairs = {
        "X vs rotated X": x @ q,
        "X vs linearly mixed X": x @ (q * np.geomspace(10, 0.1, 32)),
        "X vs nonlinear function of its latents": np.maximum(z @ rng.normal(size=(8, 24)), 0),
        "X vs noise": rng.normal(size=(n, 32)),
    }
    infos = repscope.list_measures()
    print(f"repscope {repscope.__version__}: {len(infos)} measures registered\n")
    names = [i.name for i in infos if i.input_kind == "representation"]
    width = max(len(k) for k in pairs)
    print(" " * width + "".join(f"{nm:>14}" for nm in names))
    for label, y in pairs.items():
        vals = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", repscope.DegeneracyWarning)
            for nm in names:
                try:
                    vals.append(f"{repscope.measure(nm)(x, y):14.4f}")
                except repscope.RepscopeError as e:  # e.g. measures needing equal widths
                    vals.append(f"{'n/a':>14}")
                    _ = e
        print(f"{label:<{width}}" + "".join(vals))


if __name__ == "__main__":
    main()
