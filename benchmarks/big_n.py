"""A million inputs: RSA, mutual k-NN and RBF CKA within a memory budget (issue 19).

    python benchmarks/big_n.py [--n 1000000] [--d 768] [--memory 4GiB] [--dir DIR] [--json F]

Writes two float32 representations of n × d as ``.npy`` files (a shared 32-dimensional
latent, each seen through its own random projection plus noise; reused when present),
then runs each measure in its own process on the memory-mapped files with
``memory=…`` and prints the value, the path, the 95 % interval, the wall time and the
peak memory of that process: the peak of ``RssAnon`` (anonymous memory, sampled every
20 ms) and ``VmHWM`` (which also counts the pages of the memory-mapped files that were
read, i.e. the page cache, not memory the process allocated).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

MEASURES = {
    "rsa": ("rsa", {}),
    "mutual_knn": ("mutual_knn", {"k": 10}),
    "cka_rbf": ("cka", {"kernel": "rbf"}),
}


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def make_data(folder: Path, n: int, d: int, seed: int = 0) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    px, py = folder / f"x_{n}_{d}.npy", folder / f"y_{n}_{d}.npy"
    if px.exists() and py.exists():
        return px, py
    rng = np.random.default_rng(seed)
    latent_dim = 32
    wx = rng.standard_normal((latent_dim, d)).astype(np.float32)
    wy = rng.standard_normal((latent_dim, d)).astype(np.float32)
    x = np.lib.format.open_memmap(px, mode="w+", dtype=np.float32, shape=(n, d))
    y = np.lib.format.open_memmap(py, mode="w+", dtype=np.float32, shape=(n, d))
    step = 50_000
    for s in range(0, n, step):
        e = min(n, s + step)
        z = rng.standard_normal((e - s, latent_dim)).astype(np.float32)
        x[s:e] = np.tanh(z @ wx / 4) + 0.3 * rng.standard_normal((e - s, d), dtype=np.float32)
        y[s:e] = z @ wy / 4 + 0.5 * rng.standard_normal((e - s, d), dtype=np.float32)
    x.flush()
    y.flush()
    del x, y
    return px, py


def run_one(key: str, px: str, py: str, memory: str, seed: int) -> dict:
    """Run one measure in this process and return its record (peak memory included)."""
    import repscope

    peak = {"anon": 0}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak["anon"] = max(peak["anon"], _status("RssAnon"))
            time.sleep(0.02)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    x = np.load(px, mmap_mode="r")
    y = np.load(py, mmap_mode="r")
    name, params = MEASURES[key]
    m = repscope.measure(name, memory=memory, **params)
    plan = m.plan_for(x, y)
    t0 = time.perf_counter()
    est = m.estimate(x, y, seed=seed)
    seconds = time.perf_counter() - t0
    done.set()
    t.join()
    detail = {k: v for k, v in est.detail.items() if k != "values"}
    return {"measure": key, "n": int(x.shape[0]), "d": int(x.shape[1]), "memory": memory,
            "path": est.path, "value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high,
            "ci_width": (None if est.ci_low is None else est.ci_high - est.ci_low),
            "seconds": seconds, "peak_rss_anon_bytes": max(peak["anon"], _status("RssAnon")),
            "vm_hwm_bytes": _status("VmHWM"), "reason": plan.reason if plan else "",
            "detail": detail}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--memory", default="4GiB")
    ap.add_argument("--dir", default="/tmp/repscope-big")
    ap.add_argument("--measures", default=",".join(MEASURES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--one", nargs=2, metavar=("X", "Y"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:  # child process: one measure
        print(json.dumps(run_one(a.measures, a.one[0], a.one[1], a.memory, a.seed)))
        return
    t0 = time.perf_counter()
    px, py = make_data(Path(a.dir), a.n, a.d)
    print(f"data: {px}, {py} ({time.perf_counter() - t0:.1f} s)", flush=True)
    records = []
    for key in a.measures.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", str(px), str(py),
                              "--measures", key, "--memory", a.memory, "--seed", str(a.seed)],
                             capture_output=True, text=True)
        if out.returncode:
            print(f"{key}: failed\n{out.stderr[-3000:]}", flush=True)
            records.append({"measure": key, "error": out.stderr[-3000:]})
            continue
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        records.append(rec)
        width = "" if rec["ci_width"] is None else f", 95 % CI width {rec['ci_width']:.4f}"
        print(f"{key}: {rec['value']:.4f} [{rec['path']}{width}] in {rec['seconds']:.1f} s, "
              f"peak RssAnon {rec['peak_rss_anon_bytes'] / 2**30:.2f} GiB, "
              f"VmHWM {rec['vm_hwm_bytes'] / 2**30:.2f} GiB; {rec['detail']}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
