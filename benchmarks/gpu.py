"""repscope on a CUDA GPU: absolute times of the benchmark cases (one run).

    python benchmarks/gpu.py [--json out.json]

Runs the same measures as ``benchmarks/run.py`` on CUDA tensors (float32 input,
float64 accumulation, as on the CPU) and prints wall times after a warm-up,
with ``torch.cuda.synchronize()`` around every timed call, plus the float32
GEMM rate of the device for reference.  Checks each value against the NumPy
(CPU, float64) answer on the same float32 data.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def _time(f: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    import torch

    out = f()  # warm-up
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


def gemm_rate(dtype: Any, size: int = 8192) -> float:
    import torch

    a = torch.randn(size, size, device="cuda", dtype=dtype)
    t, _ = _time(lambda: a @ a)
    return 2 * size**3 / t / 1e9


def main() -> None:
    import torch

    import repscope

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    rng = np.random.default_rng(0)
    rows = []
    cases = [
        ("cka", {}, 10_000, 1024),
        ("procrustes", {}, 10_000, 1024),
        ("mean_cca", {}, 10_000, 1024),
        ("rsa", {"rdm": "correlation", "compare": "pearson"}, 10_000, 1024),
        ("procrustes", {}, 2_000, 4096),
        ("cka", {"kernel": "rbf"}, 5_000, 1024),
    ]
    for name, params, n, d in cases:
        z = rng.normal(size=(n, 64)).astype(np.float32)
        x = z @ rng.normal(size=(64, d)).astype(np.float32) + rng.normal(size=(n, d)).astype(
            np.float32)
        y = np.tanh(z @ rng.normal(size=(64, d)).astype(np.float32)) + rng.normal(
            size=(n, d)).astype(np.float32)
        m = repscope.measure(name, **params)
        tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds, out = _time(lambda m=m, tx=tx, ty=ty: m.compute(tx, ty))
            cpu = m(x.astype(np.float64), y.astype(np.float64))
        rows.append({"measure": name, "params": params, "n": n, "d": d, "seconds": seconds,
                     "value": float(out), "cpu_float64_value": cpu,
                     "abs_diff": abs(float(out) - cpu)})
    info = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "gemm_tflops_fp32": gemm_rate(torch.float32) / 1e3,
            "gemm_tflops_fp64": gemm_rate(torch.float64, 4096) / 1e3}
    print(f"{info['device']}  torch {info['torch']}  GEMM fp32 {info['gemm_tflops_fp32']:.1f} "
          f"TFLOP/s, fp64 {info['gemm_tflops_fp64']:.1f} TFLOP/s")
    print(f"{'measure':<34}{'n':>7}{'d':>6}{'seconds':>10}{'|value - cpu f64|':>20}")
    for r in rows:
        label = r["measure"] + (str(r["params"]) if r["params"] else "")
        print(f"{label:<34}{r['n']:>7}{r['d']:>6}{r['seconds']:>10.4f}{r['abs_diff']:>20.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "cases": rows}, f, indent=1)


if __name__ == "__main__":
    main()
