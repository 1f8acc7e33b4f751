"""Shared experiment plumbing: resumable tidy result tables, progress bars, config checks."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.core.optional import require
from repscope.core.progress import new_progress

__all__ = [
    "ResultsTable",
    "check_config",
    "jsonable",
    "make_progress",
    "pick_device",
    "set_threads",
]


def jsonable(value: Any) -> Any:
    """Convert NumPy scalars/arrays and NaN to JSON-friendly Python values."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if math.isnan(v) else v
    return value


class ResultsTable:
    """A tidy CSV table (one row per unit of work) that can be resumed.

    Rows are appended as soon as they are computed; :meth:`done` tells which
    keys (tuples of the ``key`` columns) are already present so a re-run skips them.
    """

    def __init__(self, path: str | Path, key: Sequence[str]) -> None:
        self.path = Path(path)
        self.key = tuple(key)
        self._frame: Any = None

    def frame(self) -> Any:
        """The table as a pandas DataFrame (empty when absent)."""
        pd = require("pandas", purpose="the experiment tables")
        if self._frame is None:
            if self.path.exists() and self.path.stat().st_size > 0:
                self._frame = pd.read_csv(self.path)
            else:
                self._frame = pd.DataFrame(columns=list(self.key))
        return self._frame

    def done(self) -> set[tuple[Any, ...]]:
        df = self.frame()
        if len(df) == 0:
            return set()
        return {tuple(_norm(v) for v in row) for row in df[list(self.key)].itertuples(index=False)}

    def key_of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(_norm(row[k]) for k in self.key)

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        pd = require("pandas", purpose="the experiment tables")
        new = pd.DataFrame([jsonable(r) for r in rows])
        if len(new) == 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old = self.frame()
        merged = new if len(old) == 0 else pd.concat([old, new], ignore_index=True)
        tmp = self.path.with_suffix(".tmp")
        merged.to_csv(tmp, index=False)
        tmp.replace(self.path)
        self._frame = merged


def _norm(v: Any) -> Any:
    """Normalise key values so CSV round trips compare equal (1 == 1.0 == '1')."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return int(f) if f.is_integer() else round(f, 12)
    return str(v)


def check_config(out_dir: Path, config: dict[str, Any], keys: Sequence[str]) -> None:
    """Record ``config`` in ``out_dir/config.json``; refuse to resume under different ``keys``.

    Results already in ``out_dir`` were produced with the recorded settings; mixing
    them with a run under other settings would silently give a wrong table.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "config.json"
    cfg = jsonable(config)
    if path.exists():
        old = json.loads(path.read_text())
        diff = [k for k in keys if old.get(k) != cfg.get(k)]
        if diff:
            raise RepscopeError(
                f"{out_dir} holds results made with other settings ({', '.join(diff)}: "
                f"{[old.get(k) for k in diff]} vs {[cfg.get(k) for k in diff]}); use another "
                "--out directory or --fresh to start over"
            )
        cfg = {**old, **cfg}
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True))


@contextmanager
def make_progress(enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr (so ``--json`` output on stdout stays clean)."""
    with new_progress(enabled) as progress:
        yield progress


def set_threads(n: int | None) -> None:
    """Limit torch's CPU threads (``None`` leaves the default)."""
    if n is None:
        return
    torch = require("torch", purpose="the paper's experiments")
    if n < 1:
        raise RepscopeError(f"threads must be >= 1, got {n}")
    torch.set_num_threads(int(n))


def pick_device(spec: str = "auto") -> Any:
    """``"auto"`` → CUDA when available, else CPU; otherwise ``torch.device(spec)``."""
    torch = require("torch", purpose="the paper's experiments")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RepscopeError("device 'cuda' requested but torch.cuda.is_available() is False")
    return dev


def pair_metrics(a: Any, b: Any, *, n_candidates: int, seed: int) -> dict[str, Any]:
    """KL (both ways), d_LLV with its terms and choices, and d_{f,g} for one model pair.

    A pair for which d_LLV or d_{f,g} is undefined (a :class:`RepscopeError`, e.g. a
    collapsed embedding) gets empty values and the reason in ``"error"`` instead
    of aborting a long experiment.
    """
    from repscope.identifiability.dissimilarity import representation_dissimilarity
    from repscope.identifiability.kl import kl_divergence
    from repscope.identifiability.llv import llv_distance

    kl = kl_divergence(a, b)
    row: dict[str, Any] = {"kl": kl.forward, "kl_reverse": kl.reverse}
    try:
        llv = llv_distance(a, b, n_candidates=n_candidates, seed=seed)
        dis = representation_dissimilarity(a, b, llv)
    except RepscopeError as e:
        row.update({k: None for k in ("d_llv", "t1", "t2", "t3", "t4", "pivot", "left_out",
                                      "d_svd_f", "d_svd_g", "d_fg")})
        row["error"] = f"{type(e).__name__}: {e}"
        return row
    row.update({
        "d_llv": llv.distance, "t1": llv.t1, "t2": llv.t2, "t3": llv.t3, "t4": llv.t4,
        "pivot": llv.pivot, "left_out": llv.left_out,
        "d_svd_f": dis.d_svd_f, "d_svd_g": dis.d_svd_g, "d_fg": dis.d_fg, "error": "",
    })
    return row
