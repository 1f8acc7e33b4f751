"""The grounding results database: every value a run computes, and the table rebuilt from it.

``repscope ground`` keeps ``grounding.sqlite`` in its output folder, a
:class:`~repscope.storage.results_db.ResultsDB` (the study results database,
reused: crash-safe, one committed row per value).  One row per value of a
measure on a pair of representations:

* ``dataset`` — ``grounding/<test>``, the first test that needed the value
  (layer pairs between seeds are shared by the tests that compare seeds);
* ``model_a, layer_a, model_b, layer_b`` — the pair, in the order the measure
  was called; an activation edited by the sensitivity tests is
  ``layer|<edit>`` (e.g. ``conv1|bottom0.9``);
* ``measure, params`` — the measure and its parameters; ``n`` the inputs;
* ``value`` — the dissimilarity the tests read (similarities negated), or
  ``error`` — the kind of failure (the tests count it).

Beside it, a table ``grounding_meta`` (JSON by key) holds what the scores need
besides the measures: the zoo's models, layers and groups, accuracies, output
divergences, the edits and their accuracy changes, the settings and a
fingerprint of the activations.
:func:`~repscope.grounding.benchmark.table_from_db` rebuilds the whole
measure × test table (scores, intervals, ranks) from the file alone; a rerun
into the same folder reads finished values instead of recomputing them, and
refuses a database of another zoo.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.grounding.known_answers import value_key
from repscope.grounding.zoo import GroundingZoo
from repscope.storage.results_db import ResultsDB

__all__ = ["DB_NAME", "GroundingStore", "StoredZoo", "fingerprint", "read_meta", "stored_cache",
           "zoo_meta"]

DB_NAME = "grounding.sqlite"


def fingerprint(zoo: GroundingZoo) -> str:
    """SHA-256 of the zoo's models, layers, groups, labels and activations."""
    h = hashlib.sha256()
    h.update(json.dumps([zoo.models, zoo.layers, zoo.groups], sort_keys=True).encode())
    h.update(np.ascontiguousarray(zoo.labels).tobytes())
    for m in sorted(zoo.reps):
        for layer in sorted(zoo.reps[m]):
            x = zoo.reps[m][layer]
            if x is not None:
                h.update(m.encode() + layer.encode())
                h.update(np.ascontiguousarray(np.asarray(x, dtype=np.float64)).tobytes())
    return h.hexdigest()


class GroundingStore:
    """Values of one zoo in ``folder/grounding.sqlite``: read what is there, add the rest."""

    def __init__(self, folder: str | Path, zoo_fingerprint: str) -> None:
        self.path = Path(folder) / DB_NAME
        self.db = ResultsDB(self.path)
        self._con = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        self._con.execute("CREATE TABLE IF NOT EXISTS grounding_meta "
                          "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        stored = self.meta().get("fingerprint")
        if stored is not None and stored != zoo_fingerprint:
            self.close()
            raise RepscopeError(f"{self.path} holds the values of another zoo (other models, "
                                "inputs or activations): write to another --out folder or "
                                "delete the file")
        self.put_meta("fingerprint", zoo_fingerprint)
        self.n = 0

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in
                self._con.execute("SELECT key, value FROM grounding_meta")}

    def put_meta(self, key: str, value: Any) -> None:
        self._con.execute("INSERT INTO grounding_meta (key, value) VALUES (?, ?) ON CONFLICT "
                          "(key) DO UPDATE SET value = excluded.value",
                          (key, json.dumps(value, default=_plain)))

    def known(self, name: str, params: dict[str, Any]) -> dict[tuple, tuple[float, str | None]]:
        """Stored values of one measure: (key a, key b) → (value, error kind)."""
        from repscope.storage.result_key import canonical_json

        out = {}
        for r in self.db.rows(measure=name, params=canonical_json(params)):
            la, lb = r["layer_a"], r["layer_b"]
            out[(r["model_a"], la, r["model_b"], lb)] = (
                math.nan if r["value"] is None else float(r["value"]), r["error"])
        return out

    def record(self, test: str, name: str, params: dict[str, Any], n: int, kx: Any, ky: Any,
               value: float, error: str | None) -> None:
        ma, la, mb, lb = value_key(kx, ky)
        self.db.insert({"dataset": f"grounding/{test}", "model_a": ma, "layer_a": la,
                        "model_b": mb, "layer_b": lb, "measure": name, "params": params,
                        "stats": {}, "n": n, "seed": 0, "kind": "dissimilarity",
                        "value": None if error else value, "error": error})
        self.n += 1

    def close(self) -> None:
        self._con.close()
        self.db.close()


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def zoo_meta(zoo: GroundingZoo, cache: dict[str, Any]) -> dict[str, Any]:
    """What the scores need besides the measures' values (see the module docstring)."""
    from repscope.grounding.known_answers import _jsd

    models = zoo.models
    jsd = {f"{a}\t{b}": _jsd(zoo.logits[a], zoo.logits[b])
           for i, a in enumerate(models) for b in models[i + 1:] if a in zoo.logits
           and b in zoo.logits}
    edits = {m: [[layer, name, drop] for layer, name, _, drop in rows]
             for m, rows in cache.get("edits", {}).items()}
    return {"models": models, "layers": zoo.layers, "groups": zoo.groups,
            "n_inputs": int(zoo.labels.shape[0]), "description": zoo.description,
            "accuracy": {m: zoo.accuracy(m) for m in models if m in zoo.logits},
            "jsd": jsd, "edits": edits, "runnable": zoo.runnable, "has_labels": zoo.has_labels}


class StoredZoo(GroundingZoo):
    """A zoo rebuilt from the metadata: no activations, the stored accuracies."""

    def __init__(self, meta: dict[str, Any]) -> None:
        z = meta["zoo"]
        grouped = {m for g in z["groups"].values() for m in g}
        reps: dict[str, dict[str, Any]] = {m: dict.fromkeys(z["layers"]) for m in z["models"]}
        for m in grouped - set(reps):
            reps[m] = {z["layers"][-2] if len(z["layers"]) >= 2 else z["layers"][-1]: None}
        super().__init__(list(z["models"]), list(z["layers"]), reps,
                         dict.fromkeys(z["accuracy"]), np.zeros(z["n_inputs"], dtype=np.int64),
                         {}, z["description"], {t: dict(g) for t, g in z["groups"].items()},
                         bool(z["has_labels"]))
        self._acc = z["accuracy"]
        self._runnable = bool(z["runnable"])

    @property
    def runnable(self) -> bool:
        return self._runnable

    def accuracy(self, model: str) -> float:
        return float(self._acc[model])


def stored_cache(meta: dict[str, Any]) -> dict[str, Any]:
    """The tests' shared cache (output divergences, edits) from the metadata."""
    z = meta["zoo"]
    jsd = {tuple(sorted(k.split("\t"))): v for k, v in z["jsd"].items()}
    edits = {m: [(layer, name, None, drop) for layer, name, drop in rows]
             for m, rows in z["edits"].items()}
    return {"jsd": jsd, **({"edits": edits} if edits else {})}


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The ``grounding_meta`` table of ``folder/grounding.sqlite`` (a clear error when there
    is no finished run in it)."""
    path = Path(folder) / DB_NAME
    if not path.exists():
        raise RepscopeError(f"no grounding database at {path}: run repscope ground first")
    con = sqlite3.connect(str(path))
    try:
        meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM grounding_meta")}
    except sqlite3.DatabaseError as exc:
        raise RepscopeError(f"{path} is not a grounding database ({exc})") from exc
    finally:
        con.close()
    if "zoo" not in meta or "settings" not in meta:
        raise RepscopeError(f"{path} holds no finished grounding run (no metadata)")
    return meta
