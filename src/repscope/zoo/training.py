"""Train the zoo's populations once, cache them on disk with provenance.

:func:`train_population` trains every :class:`~repscope.zoo.population.ModelSpec`
of a list on an image training set and writes, in the zoo folder
(``$REPSCOPE_ZOO_DIR``, default ``~/.cache/repscope/zoo``):

* ``<model name>.pt`` — the state dict (read back with ``weights_only=True``);
* ``manifest.json`` — one entry per model: its spec and factors, the training
  data (name, SHA-256, number of inputs, label variant, the intervention of
  :mod:`repscope.zoo.interventions` if any), steps, samples seen,
  training FLOPs (6 × multiply–accumulates per input × samples seen: forward
  and backward), the weights' SHA-256, test accuracy (supervised) or
  reconstruction error (autoencoder), the seconds it took and the library
  versions.

Models that are checkpoints of one run (same spec but the number of epochs)
are trained once, saving each checkpoint on the way; with a fixed seed a run
is deterministic, so a checkpoint equals the model trained for that long.
A model whose entry and file are present (same spec, same data hash) is not
trained again; one folder is used by one process at a time (a lock file).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.core.optional import require
from repscope.zoo.architectures import build_network, macs_per_input
from repscope.zoo.interventions import augment_batch, describe, shortcut_images
from repscope.zoo.population import ModelSpec, training_subset

__all__ = ["MANIFEST_VERSION", "TrainedZoo", "load_network", "train_population", "zoo_dir"]

MANIFEST_VERSION = 1
BATCH_SIZE = 128
LEARNING_RATE = 1e-3


def zoo_dir(path: str | Path | None = None) -> Path:
    """``path``, ``$REPSCOPE_ZOO_DIR`` or ``~/.cache/repscope/zoo``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get("REPSCOPE_ZOO_DIR") or Path.home() / ".cache" / "repscope"
                / "zoo")


@dataclass
class TrainedZoo:
    """The trained models of one call: the folder and the manifest entries by name."""

    folder: Path
    entries: dict[str, dict[str, Any]]

    def load(self, name: str) -> Any:
        """The network of model ``name``, in eval mode."""
        entry = self.entries[name]
        return load_network(ModelSpec(**{k: entry["spec"][k] for k in (
            "family", "width", "depth", "seed", "data", "epochs", "n_train")}), self.folder)


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.exists():
        return {"version": MANIFEST_VERSION, "models": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise RepscopeError(f"{path} is not valid JSON ({exc}); move it aside and re-run to "
                            "retrain the zoo") from exc
    if data.get("version") != MANIFEST_VERSION:
        raise RepscopeError(f"{path} has manifest version {data.get('version')}, this repscope "
                            f"writes {MANIFEST_VERSION}: use another zoo folder")
    return data


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(folder / "manifest.json")


def _cached(folder: Path, manifest: dict[str, Any], spec: ModelSpec, data_sha: str) -> bool:
    entry = manifest["models"].get(spec.name)
    path = folder / f"{spec.name}.pt"
    return bool(entry and path.exists() and entry["data"]["sha256"] == data_sha
                and entry["weights_sha256"] == _sha256_file(path))


def _evaluate(model: Any, spec: ModelSpec, images: np.ndarray, labels: np.ndarray
              ) -> dict[str, float]:
    torch = require("torch")
    with torch.no_grad():
        x = torch.as_tensor(images)
        if spec.family == "autoencoder":
            err = float(torch.nn.functional.mse_loss(model.reconstruct(x), x.reshape(len(x), -1)))
            return {"test_reconstruction_mse": err}
        pred = torch.cat([model(x[i:i + 2048]).argmax(1) for i in range(0, len(x), 2048)])
        return {"test_accuracy": float((pred.numpy() == labels).mean())}


def _train_run(specs: list[ModelSpec], train: Any, test: Any, folder: Path,
               say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Train the longest of ``specs`` (one run), saving every requested checkpoint."""
    from repscope.core.version import __version__

    torch = require("torch", purpose="training the zoo")
    longest = max(specs, key=lambda s: s.epochs)
    idx, y = training_subset(train.labels, longest)
    x = torch.as_tensor(shortcut_images(train.images[idx], y, longest.data))
    yt = torch.as_tensor(y)
    torch.manual_seed(longest.seed)
    gen = torch.Generator().manual_seed(longest.seed)
    aug_gen = torch.Generator().manual_seed(10_000 + longest.seed)  # drawn only by aug<S>
    model = build_network(longest.family, longest.width, longest.depth)
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    steps_per_epoch = int(np.ceil(len(x) / BATCH_SIZE))
    stops: dict[int, list[ModelSpec]] = {}  # checkpoints closer than a step share it
    for s in specs:
        stops.setdefault(max(1, int(round(s.epochs * steps_per_epoch))), []).append(s)
    total = max(stops)
    macs = macs_per_input(model)
    out: dict[str, dict[str, Any]] = {}
    say(f"training {longest.run_key} ({total} steps on {len(x)} inputs)")
    start = time.perf_counter()
    step, seen = 0, 0
    model.train()
    while step < total:
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH_SIZE):
            b = perm[i:i + BATCH_SIZE]
            opt.zero_grad()
            if longest.family == "autoencoder":
                xb = x[b]
                loss = torch.nn.functional.mse_loss(model.reconstruct(xb), xb.reshape(len(b), -1))
            else:
                loss = torch.nn.functional.cross_entropy(
                    model(augment_batch(x[b], longest.data, aug_gen)), yt[b])
            loss.backward()
            opt.step()
            step += 1
            seen += len(b)
            for spec in stops.get(step, []):
                model.eval()
                path = folder / f"{spec.name}.pt"
                torch.save(model.state_dict(), path)
                out[spec.name] = {
                    "spec": spec.to_dict(),
                    "data": {"name": train.name, "sha256": train.sha256, "n": int(len(x)),
                             "variant": spec.data, "intervention": describe(spec.data),
                             "test_name": test.name,
                             "test_sha256": test.sha256},
                    "steps": step, "samples_seen": seen, "macs_per_input": macs,
                    "training_flops": 6 * macs * seen,
                    "weights_sha256": _sha256_file(path),
                    "parameters": int(sum(p.numel() for p in model.parameters())),
                    "train_seconds": time.perf_counter() - start,
                    "versions": {"repscope": __version__, "torch": torch.__version__},
                    **_evaluate(model, spec, test.images, test.labels),
                }
                model.train()
            if step >= total:
                break
    return out


def train_population(specs: Sequence[ModelSpec], train: Any, test: Any, *,
                     folder: str | Path | None = None, progress: bool = False
                     ) -> TrainedZoo:
    """Train (or find in the cache) every model of ``specs``; see the module docstring.

    ``train``/``test`` are :class:`~repscope.zoo.images.ImageSet` (or anything with
    ``name``, ``images``, ``labels`` and ``sha256``).
    """
    from filelock import FileLock

    target = zoo_dir(folder)
    target.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        if progress:
            import sys

            print(f"repscope zoo: {msg}", file=sys.stderr, flush=True)

    with FileLock(str(target / ".zoo.lock")):
        manifest = _read_manifest(target)
        runs: dict[str, list[ModelSpec]] = {}
        for spec in specs:
            runs.setdefault(spec.run_key, []).append(spec)
        for group in runs.values():
            if all(_cached(target, manifest, s, train.sha256) for s in group):
                continue
            with _threads():
                fresh = _train_run(group, train, test, target, say)
            manifest["models"].update(fresh)
            _write_manifest(target, manifest)
        for spec in specs:  # factors may differ between presets: keep the union
            entry = manifest["models"][spec.name]
            known = [tuple(f) for f in entry["spec"].get("factors", [])]
            entry["spec"]["factors"] = [list(f) for f in dict.fromkeys(known + list(
                spec.factors))]
        _write_manifest(target, manifest)
        return TrainedZoo(target, {s.name: manifest["models"][s.name] for s in specs})


class _threads:
    """Two threads at most while training (small networks gain nothing from more)."""

    def __enter__(self) -> None:
        torch = require("torch")
        self.before = torch.get_num_threads()
        torch.set_num_threads(min(2, self.before))

    def __exit__(self, *exc: object) -> None:
        require("torch").set_num_threads(self.before)


def load_network(spec: ModelSpec, folder: str | Path | None = None) -> Any:
    """The cached network of ``spec`` (eval mode); a clear error when it is not trained."""
    torch = require("torch", purpose="loading the zoo")
    path = zoo_dir(folder) / f"{spec.name}.pt"
    if not path.exists():
        raise RepscopeError(f"{spec.name} is not in the zoo at {path.parent}; train it with "
                            "repscope.zoo.training.train_population")
    model = build_network(spec.family, spec.width, spec.depth)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
