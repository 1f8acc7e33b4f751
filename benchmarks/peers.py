"""Time the other tools on one benchmark case (runs in benchmarks/.venv-peers).

Usage (called by run.py): ``peers.py CASE DATA_DIR REPEATS`` prints one JSON
object ``{tool: {"value": float, "seconds": float, "quantity": str} | {"error": str}}``.
Each tool's output is converted to the quantity repscope reports for the case
(see ``quantity``), so run.py can check agreement.  Only public functions of
the tools are called; nothing of theirs is modified.
"""

from __future__ import annotations

import json
import math
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np


def _best(f: Callable[[], float], repeats: int) -> tuple[float, float]:
    best, value = math.inf, math.nan
    for _ in range(repeats):
        t = time.perf_counter()
        value = float(f())
        best = min(best, time.perf_counter() - t)
    return value, best


def _anatome() -> Any:
    # anatome.distance imports torchvision's feature extractor for its model-hook
    # class only; the distance functions used here do not need it.
    if "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        models = types.ModuleType("torchvision.models")
        fe = types.ModuleType("torchvision.models.feature_extraction")
        fe.get_graph_node_names = fe.create_feature_extractor = None
        tv.models, models.feature_extraction = models, fe
        sys.modules.update(
            {"torchvision": tv, "torchvision.models": models,
             "torchvision.models.feature_extraction": fe}
        )
    from anatome import distance

    return distance


def run(case: str, data: str, repeats: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(torch.get_num_threads())
    x = np.load(f"{data}/x.npy", allow_pickle=False)
    y = np.load(f"{data}/y.npy", allow_pickle=False)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    tools: dict[str, tuple[str, Callable[[], float]]] = {}

    if case == "cka":
        from ckatorch.core import cka_base

        tools["ckatorch"] = ("cka", lambda: cka_base(tx, ty, kernel="linear", unbiased=False))
        import cka as pytorch_cka

        tools["pytorch-cka"] = (
            "cka_debiased", lambda: pytorch_cka.cka_from_features(tx, ty).reshape(-1)[0]
        )
        dist = _anatome()
        tools["anatome"] = ("cka", lambda: 1.0 - dist.linear_cka_distance(
            tx.clone(), ty.clone(), reduce_bias=False))
        from netrep.metrics import LinearCKA

        def netrep_cka() -> float:
            metric = LinearCKA()
            metric.fit(x64, y64)
            return math.cos(metric.score(x64, y64))

        tools["netrep"] = ("cka", netrep_cka)
    elif case in ("procrustes", "procrustes_wide"):
        dist = _anatome()
        # anatome returns 1 - F (F = normalised nuclear norm): convert to sqrt(2 - 2F)
        tools["anatome"] = ("procrustes", lambda: math.sqrt(max(0.0, 2.0 * float(
            dist.orthogonal_procrustes_distance(tx.clone(), ty.clone())))))
        from netrep.metrics import LinearMetric

        # netrep's angular score arccos(F): convert to sqrt(2 - 2 cos)
        tools["netrep"] = ("procrustes", lambda: math.sqrt(max(0.0, 2.0 - 2.0 * math.cos(
            LinearMetric(alpha=1.0, score_method="angular").fit_score(x64, y64)))))
    elif case == "mean_cca":
        dist = _anatome()
        tools["anatome"] = ("mean_cca", lambda: float(
            dist.cca(tx.clone(), ty.clone(), backend="svd")[2].mean()))
        from netrep.metrics import LinearMetric

        tools["netrep"] = ("mean_cca", lambda: math.cos(
            LinearMetric(alpha=0.0, score_method="angular").fit_score(x64, y64)))
    elif case == "rsa":
        import rsatoolbox

        def rsat() -> float:
            rx = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x64), method="correlation")
            ry = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(y64), method="correlation")
            return float(rsatoolbox.rdm.compare(rx, ry, method="spearman")[0, 0])

        tools["rsatoolbox"] = ("rsa", rsat)
    else:
        raise SystemExit(f"unknown case {case}")

    out: dict[str, Any] = {}
    for name, (quantity, f) in tools.items():
        try:
            value, seconds = _best(f, repeats)
            out[name] = {"value": value, "seconds": seconds, "quantity": quantity}
        except Exception as exc:  # noqa: BLE001 - report any failure of a peer tool
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return out


if __name__ == "__main__":
    case, data, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(run(case, data, repeats)))
