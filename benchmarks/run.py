"""repscope against the other tools, on identical data, in one run.

    .venv/bin/python benchmarks/run.py [--quick] [--cases cka,rsa,...] [--json out.json]

Prints, for each case of the performance issue's target table, repscope's time,
each other tool's time and value (converted to repscope's quantity), the
speed-up over the fastest other tool, and repscope's time over the GEMM floor:
the case's GEMM flops at the float32 / float64 GEMM rate measured at the start
of the same run.  The other tools run in ``benchmarks/.venv-peers`` (built by
``benchmarks/setup_peers.sh``; never needed by the tests).  Without it only
repscope and the floors are measured.

Benchmark with the BLAS settings a user would have: if OPENBLAS_CORETYPE or
OPENBLAS_L2_SIZE are set in the environment (some machines set them for old
OpenBLAS builds), unset both for this command only; the kernel in use is
printed from threadpoolctl.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"

# case -> (targets text, n, d, dtype of the GEMM floor)
CASES = ["cka", "procrustes", "mean_cca", "rsa", "procrustes_wide", "grid", "stream"]
TARGETS = {
    "cka": ">= 2x fastest tool, within 1e-6 of float64, <= 1.5x GEMM floor",
    "procrustes": ">= 1.5x fastest tool",
    "mean_cca": ">= 3x fastest tool",
    "rsa": ">= 20x rsatoolbox",
    "procrustes_wide": ">= 10x fastest tool",
    "grid": ">= 10x looping single-pair calls",
    "stream": ">= 70% of the GEMM rate, O(d^2) memory",
}


# ------------------------------------------------------------------ machine
def machine() -> dict[str, Any]:
    from threadpoolctl import threadpool_info

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    blas = [
        {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for i in threadpool_info()
    ]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "blas": blas,
        "openblas_env": {
            k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        },
    }


def gemm_rate(dtype: Any, size: int = 4096, repeats: int = 3) -> float:
    """Best-of-``repeats`` flop rate of a square GEMM (flops/s)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * size**3 / best


# --------------------------------------------------------------------- data
def make_pair(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Related float32 representations: Y is a noisy non-linear map of X."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    w = (rng.standard_normal((d, d), dtype=np.float32) / np.float32(math.sqrt(d)))
    y = np.tanh(x @ w) + np.float32(0.5) * rng.standard_normal((n, d), dtype=np.float32)
    return x, y.astype(np.float32)


def best_time(f: Callable[[], Any], repeats: int) -> tuple[float, float]:
    best, value = math.inf, math.nan
    for _ in range(repeats):
        t = time.perf_counter()
        value = float(f())
        best = min(best, time.perf_counter() - t)
    return value, best


#: the kernels each case cannot avoid at repscope's accuracy, timed bare on the same data
CORE_OPS = {
    "cka": "float32 SYRK XᵀX, YᵀY + GEMM XᵀY",
    "procrustes": "float32 GEMM XᵀY + float64 eigenvalues of MᵀM (d×d)",
    "mean_cca": "float64 SYRK XᵀX, YᵀY + GEMM XᵀY + 2 Cholesky + eigenvalues (d×d)",
    "rsa": "2 float64 n×n SYRK (RDMs; ranks by counting add ~1 s)",
    "procrustes_wide": "2 float32 n×n SYRK + float64 Cholesky, congruence LᵀKL (sygst) "
                       "and eigenvalues (n×n)",
    "stream": "float32 [X Y]ᵀ[X Y] of every row (SYRK, or 2 SYRK + GEMM), no I/O",
}


def core_ops(case: str, x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """A callable running :data:`CORE_OPS` of ``case`` with bare NumPy (returns 0.0)."""
    if case == "cka":
        return lambda: float((x.T @ x)[0, 0] + (y.T @ y)[0, 0] + (x.T @ y)[0, 0]) * 0.0
    from scipy.linalg.blas import dsyrk

    def gram_eigenvalues(m: np.ndarray) -> np.ndarray:  # MᵀM by SYRK, one triangle read
        return np.linalg.eigvalsh(dsyrk(1.0, m.T, trans=0), UPLO="U")

    if case == "procrustes":
        def run() -> float:
            m = (x.T @ y).astype(np.float64)
            return float(gram_eigenvalues(m)[0]) * 0.0
        return run
    if case == "mean_cca":
        x64, y64 = x.astype(np.float64), y.astype(np.float64)

        def run() -> float:
            sxx, syy, sxy = x64.T @ x64, y64.T @ y64, x64.T @ y64
            lx, ly = np.linalg.cholesky(sxx), np.linalg.cholesky(syy)
            return float(gram_eigenvalues(sxy)[0] + lx[0, 0] + ly[0, 0]) * 0.0
        return run
    if case == "rsa":
        z = x.astype(np.float64)

        def run() -> float:
            g = z @ z.T
            g = z @ z.T
            return float(g[0, 0]) * 0.0
        return run
    # procrustes_wide
    from scipy.linalg import lapack

    def run() -> float:
        kx, ky = (x @ x.T).astype(np.float64), (y @ y.T).astype(np.float64)
        ell = np.linalg.cholesky(kx + np.eye(kx.shape[0]))
        m, _ = lapack.dsygst(ky, ell, itype=2, lower=1, overwrite_a=1)
        return float(np.linalg.eigvalsh(m)[0]) * 0.0
    return run


def peers(case: str, data: Path, repeats: int, timeout: int) -> dict[str, Any]:
    if not PEER_PYTHON.exists():
        return {"(peers)": {"error": "benchmarks/.venv-peers missing: run setup_peers.sh"}}
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    try:
        out = subprocess.run(
            [str(PEER_PYTHON), str(HERE / "peers.py"), case, str(data), str(repeats)],
            capture_output=True, text=True, timeout=timeout, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        return {"(peers)": {"error": f"timed out after {timeout} s"}}
    if out.returncode != 0:
        return {"(peers)": {"error": out.stderr.strip()[-400:]}}
    return json.loads(out.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------- cases
def run_pair_case(case: str, n: int, d: int, repeats: int, rates: dict[str, float],
                  tmp: Path, peer_timeout: int) -> dict[str, Any]:
    import repscope

    x, y = make_pair(n, d, seed=1 if case == "procrustes_wide" else 0)
    np.save(tmp / "x.npy", x)
    np.save(tmp / "y.npy", y)
    name = {"procrustes_wide": "procrustes"}.get(case, case)
    m = repscope.measure(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, seconds = best_time(lambda: m(x, y), repeats)
        exact = m(x.astype(np.float64), y.astype(np.float64))
        extra = {"cka_debiased": repscope.measure("cka", debiased=True)(x, y)}
    # GEMM flops the computation needs, and the precision it runs them in
    if case == "cka":
        flops, prec = n * (2 * d) ** 2, "float32"  # Sxx, Syy (SYRK) + Sxy
    elif case == "rsa":
        flops, prec = 2 * n * n * d, "float64"  # two RDMs, upper triangles
    elif case == "procrustes_wide":
        flops, prec = 2 * n * n * d, "float64"  # two n x n Grams (SYRK)
    elif case == "procrustes":
        flops, prec = 2 * n * d * d, "float64"  # Sxy
    else:  # mean_cca
        flops, prec = n * (2 * d) ** 2, "float64"
    floor = flops / rates[prec]
    _, core = best_time(core_ops(case, x, y), repeats)
    res = {
        "case": case, "n": n, "d": d, "value": value, "float64_value": exact,
        "seconds": seconds, "floor_seconds": floor, "floor_precision": prec,
        "core_seconds": core, "core_ops": CORE_OPS[case],
        "peers": peers(case, tmp, max(1, min(repeats, 2)), peer_timeout),
    }
    for tool in res["peers"].values():
        if "value" in tool:
            ref = extra.get(tool["quantity"], value)
            tool["abs_diff"] = abs(tool["value"] - ref)
            tool["speedup"] = tool["seconds"] / seconds
    return res


def run_grid_case(n: int, d: int, repeats: int) -> dict[str, Any]:
    """2 models x 7 layers, 10 measures: repscope.grid vs looping single-pair calls."""
    import repscope
    from repscope import grid

    rng = np.random.default_rng(2)
    reps = {}
    for model in ("a", "b"):
        h = rng.standard_normal((n, d)).astype(np.float32)
        for layer in range(7):
            h = np.tanh(h @ (rng.standard_normal((d, d)).astype(np.float32) / math.sqrt(d)))
            reps[(model, f"l{layer}")] = h.copy()
    names = ["cka", "mean_cca", "mean_sq_cca", "svcca", "procrustes", "procrustes_angular",
             "nbs", "linear_regression", "rsa", "cka_debiased"]
    measures = [repscope.measure("cka", debiased=True) if k == "cka_debiased"
                else repscope.measure(k) for k in names]

    def loop() -> float:
        for (ma, _la), xa in reps.items():
            if ma != "a":
                continue
            for (mb, _lb), xb in reps.items():
                if mb != "b":
                    continue
                for m in measures:
                    m(xa, xb)
        return 0.0

    t_grid = t_loop = math.inf
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(max(1, min(repeats, 2))):  # alternating, best of each
                # in-sample values only, like the loop (grids add held-out values by default)
                t_grid = min(t_grid, best_time(
                    lambda: (grid(reps, measures=measures, fitted="in_sample"), 0.0)[1], 1)[1])
                t_loop = min(t_loop, best_time(loop, 1)[1])
    except Exception as exc:  # noqa: BLE001 - the grid API belongs to another module
        return {"case": "grid", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"case": "grid", "n": n, "d": d, "seconds": t_grid, "loop_seconds": t_loop,
            "speedup": t_loop / t_grid}


def write_stream_files(tmp: Path, n: int, d: int, chunk: int = 65536) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((d, d), dtype=np.float32) / np.float32(math.sqrt(d))
    px, py = tmp / "stream_x.npy", tmp / "stream_y.npy"
    fx = np.lib.format.open_memmap(px, mode="w+", dtype=np.float32, shape=(n, d))
    fy = np.lib.format.open_memmap(py, mode="w+", dtype=np.float32, shape=(n, d))
    for i in range(0, n, chunk):
        x = rng.standard_normal((min(chunk, n - i), d), dtype=np.float32) + np.float32(2.0)
        fx[i : i + x.shape[0]] = x
        fy[i : i + x.shape[0]] = np.tanh(x @ w) + np.float32(0.3) * x
    fx.flush()
    fy.flush()
    del fx, fy
    return px, py


def peak_rss() -> int:
    """Peak resident memory of this process image in bytes.

    ``VmHWM`` from /proc (reset by exec); ``ru_maxrss`` would also count the
    parent's memory at fork time, which Linux carries across exec into the
    child's high-water mark.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def stream_worker(px: str, py: str, precision: str) -> None:
    """Child process: stream CKA from the files, print value, seconds and peak RSS."""
    from repscope.engine import streaming

    t = time.perf_counter()
    mom = streaming.moments(px, py, measures="cka", precision=precision)
    import repscope

    value = float(repscope.measure("cka").from_moments(mom))
    seconds = time.perf_counter() - t
    peak = peak_rss()
    print(json.dumps({"value": value, "seconds": seconds, "peak_rss": peak,
                      "precision": mom.precision}))


def stream_core_seconds(n: int, d: int, block: int = 16384) -> float:
    """The symmetric float32 product ``[X Y]ᵀ[X Y]`` of all n rows, timed bare on one
    ``block``-row block (as one SYRK, or as two SYRKs and a GEMM, whichever is faster
    here) and scaled to n rows."""
    rng = np.random.default_rng(4)
    z = rng.standard_normal((block, 2 * d), dtype=np.float32)
    x, y = np.ascontiguousarray(z[:, :d]), np.ascontiguousarray(z[:, d:])
    joint = best_time(lambda: float((z.T @ z)[0, 0]) * 0.0, 3)[1]
    split = best_time(lambda: float((x.T @ x)[0, 0] + (y.T @ y)[0, 0] + (x.T @ y)[0, 0]) * 0.0,
                      3)[1]
    return min(joint, split) * n / block


def run_stream_case(n: int, d: int, rates: dict[str, float], tmp: Path,
                    reference: bool) -> dict[str, Any]:
    px, py = write_stream_files(tmp, n, d)

    def child(precision: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, __file__, "--stream-worker", str(px), str(py), precision],
            capture_output=True, text=True, check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    fast = child("auto")
    flops = n * (2 * d) ** 2
    res = {
        "case": "stream", "n": n, "d": d, "value": fast["value"], "seconds": fast["seconds"],
        "precision": fast["precision"], "peak_rss": fast["peak_rss"],
        "file_bytes": 2 * n * d * 4, "floor_seconds": flops / rates["float32"],
        "floor_precision": "float32", "gemm_fraction": flops / rates["float32"] / fast["seconds"],
        "core_seconds": stream_core_seconds(n, d), "core_ops": CORE_OPS["stream"],
    }
    if reference:
        ref = child("float64")
        res["float64_value"] = ref["value"]
        res["float64_seconds"] = ref["seconds"]
    for p in (px, py):
        p.unlink()
    return res


# ------------------------------------------------------------------ report
def fmt_table(results: list[dict[str, Any]], rates: dict[str, float]) -> str:
    lines = [
        f"GEMM rate: float32 {rates['float32'] / 1e9:.0f} GFLOP/s, "
        f"float64 {rates['float64'] / 1e9:.0f} GFLOP/s",
        "",
        "| case | target | repscope s | vs GEMM floor | bare kernels s | other tools "
        "(s, |Δvalue|) | speed-up vs fastest | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        case = r["case"]
        if "error" in r:
            lines.append(f"| {case} | {TARGETS[case]} | – | – | – | – | {r['error']} |")
            continue
        if case == "grid":
            lines.append(
                f"| grid 2×7 layers, 10 measures (n={r['n']}, d={r['d']}) | {TARGETS[case]} | "
                f"{r['seconds']:.2f} | – | – | loop {r['loop_seconds']:.2f} s | "
                f"{r['speedup']:.1f}× | {'met' if r['speedup'] >= 10 else 'NOT met'} |"
            )
            continue
        floor = r["seconds"] / r["floor_seconds"]
        if case == "stream":
            frac = r["gemm_fraction"]
            diff = abs(r["value"] - r["float64_value"]) if "float64_value" in r else math.nan
            core = r.get("core_seconds", math.nan)
            verdict = "met" if frac >= 0.7 else "NOT met"
            target_s = r["floor_seconds"] / 0.7
            if frac < 0.7 and target_s < core:
                verdict += f" (target {target_s:.1f} s < bare kernels {core:.1f} s)"
            lines.append(
                f"| streaming CKA {r['n']}×{r['d']} ×2 from .npy ({r['file_bytes'] / 2**30:.1f}"
                f" GiB) | {TARGETS[case]} | {r['seconds']:.1f} | {floor:.2f}× "
                f"({100 * frac:.0f}% of rate) | {core:.1f} | peak RSS "
                f"{r['peak_rss'] / 2**20:.0f} MiB; |Δ float64| {diff:.1e} | – | {verdict} |"
            )
            continue
        tools = {k: v for k, v in r["peers"].items() if "seconds" in v}
        errs = {k: v["error"] for k, v in r["peers"].items() if "error" in v}
        cells = ", ".join(
            f"{k} {v['seconds']:.2f} s ({v['abs_diff']:.1e})" for k, v in sorted(tools.items())
        )
        if errs:
            cells += "; " + ", ".join(f"{k}: {e[:60]}" for k, e in errs.items())
        fastest = min((v["seconds"] for v in tools.values()), default=math.nan)
        speed = fastest / r["seconds"]
        need = {"cka": 2, "procrustes": 1.5, "mean_cca": 3, "rsa": 20,
                "procrustes_wide": 10}[case]
        if case == "rsa" and "rsatoolbox" in tools:
            speed = tools["rsatoolbox"]["seconds"] / r["seconds"]
        ok = speed >= need
        if case == "cka":
            ok = ok and floor <= 1.5 and abs(r["value"] - r["float64_value"]) <= 1e-6
        label = {"procrustes_wide": "procrustes"}.get(case, case)
        # the time the target asks for, against the bare kernels the case cannot avoid
        ref = tools["rsatoolbox"]["seconds"] if case == "rsa" and "rsatoolbox" in tools \
            else fastest
        verdict = "met" if ok else "NOT met"
        if not ok and ref / need < r["core_seconds"]:
            verdict += (f" (target {ref / need:.2f} s < bare kernels "
                        f"{r['core_seconds']:.2f} s)")
        lines.append(
            f"| {label} n={r['n']} d={r['d']} | {TARGETS[case]} | {r['seconds']:.2f} | "
            f"{floor:.2f}× ({r['floor_precision']}) | {r['core_seconds']:.2f} | "
            f"{cells or '–'} | {speed:.1f}× | {verdict} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stream-rows", type=int, default=None)
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the float64 reference pass of the streaming case")
    ap.add_argument("--peer-timeout", type=int, default=1800)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--stream-worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stream_worker:
        stream_worker(*args.stream_worker)
        return
    cases = [c for c in args.cases.split(",") if c]
    q = args.quick
    info = machine()
    print(json.dumps(info, indent=1))
    rates = {"float32": gemm_rate(np.float32), "float64": gemm_rate(np.float64)}
    results = []
    with tempfile.TemporaryDirectory(prefix="repscope-bench-") as tmpdir:
        tmp = Path(tmpdir)
        for case in cases:
            t0 = time.perf_counter()
            if case in ("cka", "procrustes", "mean_cca", "rsa"):
                n, d = (2000, 256) if q else (10_000, 1024)
                r = run_pair_case(case, n, d, args.repeats, rates, tmp, args.peer_timeout)
            elif case == "procrustes_wide":
                n, d = (500, 1024) if q else (2000, 4096)
                r = run_pair_case(case, n, d, args.repeats, rates, tmp, args.peer_timeout)
            elif case == "grid":
                r = run_grid_case(500 if q else 2000, 64 if q else 256, args.repeats)
            elif case == "stream":
                n = args.stream_rows or (100_000 if q else 1_000_000)
                r = run_stream_case(n, 256 if q else 1024, rates, tmp, not args.no_reference)
            else:
                raise SystemExit(f"unknown case {case}; choose from {CASES}")
            r["wall"] = time.perf_counter() - t0
            results.append(r)
            print(json.dumps(r), flush=True)
    print()
    print(fmt_table(results, rates))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rates": rates,
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
