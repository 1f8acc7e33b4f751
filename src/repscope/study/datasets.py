"""Inputs of a study: what the models are run on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repscope.study.spec import StudySpecError

__all__ = ["StudyData", "load_npy", "load_study_data"]


@dataclass(frozen=True)
class StudyData:
    """Inputs, optional labels and an optional train split (for probes and stitching)."""

    dataset_id: str
    inputs: Any  # np.ndarray of model inputs, or a list of texts
    labels: np.ndarray | None = None
    train_inputs: np.ndarray | None = None
    train_labels: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.inputs)


def _limit(a: Any, n: int | None, what: str = "the dataset") -> Any:
    """The first ``n`` rows of ``a``; more than there are is an error, not a silent cut."""
    if n is None:
        return a
    if n > len(a):
        raise StudySpecError(f"[dataset] n = {n}, but {what} has only {len(a)} inputs")
    return a[: int(n)]


def load_npy(path: Path, what: str, *, mmap: bool = False) -> np.ndarray:
    """The ``.npy`` array of a study file, never unpickled (object arrays are refused).

    ``what`` names the file in errors (``"[dataset] path"``).
    """
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:  # pickled or object data: refused, never unpickled
        raise StudySpecError(f"{what}: {path} cannot be loaded without pickle ({exc}); save a "
                             "numeric array with numpy.save") from exc
    except OSError as exc:
        raise StudySpecError(f"{what}: cannot read {path}: {exc}") from exc
    if not isinstance(arr, np.ndarray):  # an .npz archive
        arr.close()
        raise StudySpecError(f"{what}: {path} is not an .npy array (an .npz archive?); save one "
                             "array per file with numpy.save")
    return arr


def load_study_data(ds: dict[str, Any]) -> StudyData:
    """Load the ``[dataset]`` table of a study."""
    kind = ds.get("kind", "none")
    n = ds.get("n")
    if kind == "digits":
        from repscope.zoo.digits import load_digits_data

        data = load_digits_data(seed=int(ds.get("seed", 0)))
        split = ds.get("split", "test")
        if split not in ("test", "train"):
            raise StudySpecError("[dataset] split must be \"test\" or \"train\" for digits")
        x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
        x, y = _limit(x, n, f"the digits {split} split"), _limit(y, n)
        return StudyData(
            dataset_id=f"digits-{split}-seed{ds.get('seed', 0)}-n{len(x)}",
            inputs=x,
            labels=y,
            train_inputs=data.x_train if split == "test" else None,
            train_labels=data.y_train if split == "test" else None,
        )
    if kind == "sentences":
        from repscope.extract import builtin_sentences

        if "path" in ds:
            texts = [t for t in Path(ds["path"]).read_text(encoding="utf-8").splitlines()
                     if t.strip()]
            name = Path(ds["path"]).stem
        else:
            texts, name = builtin_sentences(), "builtin-sentences"
        texts = _limit(texts, n, f"the sentences of {name}")
        return StudyData(dataset_id=f"{name}-n{len(texts)}", inputs=texts)
    if kind == "npy":
        x = load_npy(ds["path"], "[dataset] path", mmap=True)
        labels = load_npy(ds["labels"], "[dataset] labels") if "labels" in ds else None
        x = _limit(x, n, Path(ds["path"]).name)
        if labels is not None:
            labels = _limit(labels, n)
            if len(labels) != len(x):
                raise StudySpecError(f"[dataset] labels have {len(labels)} rows, inputs {len(x)}")
        return StudyData(dataset_id=f"{Path(ds['path']).stem}-n{len(x)}", inputs=x,
                         labels=labels)
    return StudyData(dataset_id="saved-activations", inputs=[])
