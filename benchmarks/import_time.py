"""Time ``import repscope`` (median of fresh interpreters), optionally against another tree.

::

    python benchmarks/import_time.py                       # this checkout, 20 runs
    python benchmarks/import_time.py --against OLD/src     # alternate with another source tree

Each run starts a new interpreter with ``-c "import repscope"``; with
``--against`` the two trees alternate run by run, so machine drift hits both
alike, and the ratio of medians is printed (the layout issue asks for ≤ 1.10).
Also prints what ``import repscope`` loads: the number of modules and whether
NumPy, SciPy and torch are among them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
PROBE = ("import sys, repscope; mods = sys.modules; "
         "print(len(mods), 'numpy' in mods, 'scipy' in mods, 'torch' in mods)")


def _once(src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import repscope"], env=env, check=True)
    return time.perf_counter() - t0


def _loaded(src: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return {"modules": int(out[0]), "numpy": out[1] == "True", "scipy": out[2] == "True",
            "torch": out[3] == "True"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--against", type=Path, help="another source tree (its src/ folder)")
    args = ap.parse_args()
    trees = {"this": HERE}
    if args.against:
        trees["against"] = args.against.resolve()
    times: dict[str, list[float]] = {k: [] for k in trees}
    for _ in range(args.runs):
        for name, src in trees.items():
            times[name].append(_once(src))
    out = {name: {"median_s": statistics.median(ts), "min_s": min(ts), **_loaded(trees[name])}
           for name, ts in times.items()}
    if args.against:
        out["ratio_this_over_against"] = out["this"]["median_s"] / out["against"]["median_s"]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
