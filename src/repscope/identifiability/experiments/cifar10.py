"""CIFAR-10 experiment of Nielsen et al. (NeurIPS 2025): Fig. 3 left and Fig. 5.

**Data.** The standard "CIFAR-10 python version" batches read from a local
directory (``data_batch_1`` … ``data_batch_5``, ``test_batch``, ``batches.meta``:
pickled dicts with ``b"data"`` (N × 3072 uint8, channel planes of 32 × 32 images)
and ``b"labels"``).  Pixels are scaled to ``[0, 1]`` and normalised with mean 0.5
and SD 0.5 per channel; no augmentation.  repscope never downloads data.  The
batches are Python pickles: only read files you trust.

**Models.** ``f``: ResNet-18, CIFAR variant (3 × 3 stem, no max-pool, BasicBlock
stages 64/128/256/512 × [2, 2, 2, 2], global average pool, Linear → M) with an
M-dimensional bottleneck, M ∈ {2, 3, 5}; ``g``: the MLP ``9 → 128 → 128 → 128 → M``
of the synthetic experiment on the 9-dimensional label codes.

**Training.** Adam (lr 1e-4, no weight decay), batch 32, ~20,000 steps, mean
NLL; the seed sets the initialisation, the data order is the same for every
seed; the test loss is logged every 2,000 steps.  Uses CUDA when available.

**Comparisons** (one row per seed pair and M): m_CCA of the embeddings on the
train and test sets and of the unembeddings on the 10 labels, the test-loss
difference, KL in both directions, d_LLV and d_{f,g} on the test set.  Figures:
Fig. 5 (|test-loss difference| against test m_CCA(f), one panel per M) and
Fig. 3 left (2-D embeddings of the first two seeds, coloured by predicted class).
"""

from __future__ import annotations

import itertools
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import DegeneracyWarning, InvalidParameterError, RepscopeError
from repscope.identifiability import m_cca
from repscope.identifiability.experiments.common import (
    ResultsTable,
    check_config,
    make_progress,
    pair_metrics,
    pick_device,
)
from repscope.identifiability.experiments.synthetic import make_mlp
from repscope.identifiability.model import DatasetNotFoundError, SoftmaxModel, one_hot_codes
from repscope.identifiability.plots import plot_embeddings, plot_loss_vs_mcca

__all__ = [
    "CIFAR10",
    "TRAIN_FILES",
    "load_cifar10",
    "resnet18_cifar",
    "run_cifar10",
    "write_cifar10_batches",
]

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True)
class CIFAR10:
    """CIFAR-10 in memory: uint8 images (N, 3, 32, 32), int64 labels, class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    label_names: tuple[str, ...]


def _resolve(data_dir: str | Path) -> Path:
    root = Path(data_dir).expanduser()
    for cand in (root, root / "cifar-10-batches-py"):
        if cand.is_dir() and all((cand / f).is_file()
                                 for f in (*TRAIN_FILES, TEST_FILE, META_FILE)):
            return cand
    if not root.exists():
        problem = f"the directory {root} does not exist"
    else:
        missing = [f for f in (*TRAIN_FILES, TEST_FILE, META_FILE) if not (root / f).is_file()]
        problem = f"{root} lacks {', '.join(missing)}"
    raise DatasetNotFoundError(
        f"CIFAR-10 not found: {problem}. Expected the 'CIFAR-10 python version' batches "
        f"({', '.join(TRAIN_FILES)}, {TEST_FILE}, {META_FILE}) in DIR or DIR/cifar-10-batches-py; "
        f"get cifar-10-python.tar.gz from {_URL} and extract it (repscope never downloads data)."
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        d = pickle.load(fh, encoding="bytes")  # noqa: S301 - local, user-provided data set
    data = d.get(b"data", d.get("data")) if isinstance(d, dict) else None
    labels = d.get(b"labels", d.get("labels")) if isinstance(d, dict) else None
    if data is None or labels is None:
        raise DatasetNotFoundError(f"{path} is not a CIFAR-10 batch (no data/labels entries)")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise DatasetNotFoundError(
            f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape} and "
            f"{labels.shape}"
        )
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels


def load_cifar10(data_dir: str | Path) -> CIFAR10:
    """Read the CIFAR-10 python batches from ``data_dir`` (or ``data_dir/cifar-10-batches-py``).

    Raises
    ------
    DatasetNotFoundError
        The directory or a batch file is missing or malformed (the message says
        where to get the data).
    """
    root = _resolve(data_dir)
    parts = [_read_batch(root / f) for f in TRAIN_FILES]
    x_test, y_test = _read_batch(root / TEST_FILE)
    with open(root / META_FILE, "rb") as fh:
        meta = pickle.load(fh, encoding="bytes")  # noqa: S301
    names = meta.get(b"label_names", meta.get("label_names", [])) if isinstance(meta, dict) else []
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    k = len(names) or int(max(y_train.max(), y_test.max())) + 1
    if min(y_train.min(), y_test.min()) < 0 or max(y_train.max(), y_test.max()) >= k:
        raise DatasetNotFoundError(f"{root}: labels outside 0..{k - 1}")
    if not names:
        names = tuple(str(i) for i in range(k))
    return CIFAR10(x_train, y_train, x_test, y_test, names)


def write_cifar10_batches(
    out_dir: str | Path,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    label_names: Sequence[str],
) -> Path:
    """Write images (N, 3, 32, 32) uint8 in the CIFAR-10 python batch format.

    The training images are split over five ``data_batch_i`` files.  Useful to
    package small data sets (or tests) for :func:`load_cifar10`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    xtr = np.asarray(x_train, dtype=np.uint8).reshape(len(x_train), 3072)
    chunks = np.array_split(np.arange(len(xtr)), 5)
    for i, idx in enumerate(chunks, start=1):
        _dump(out / f"data_batch_{i}", xtr[idx], np.asarray(y_train)[idx],
              f"training batch {i} of 5")
    _dump(out / TEST_FILE, np.asarray(x_test, dtype=np.uint8).reshape(len(x_test), 3072),
          np.asarray(y_test), "testing batch 1 of 1")
    meta = {b"num_cases_per_batch": int(max(len(c) for c in chunks)),
            b"label_names": [n.encode() for n in label_names], b"num_vis": 3072}
    with open(out / META_FILE, "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return out


def _dump(path: Path, data: np.ndarray, labels: np.ndarray, name: str) -> None:
    d = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels], b"data": data,
         b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(labels))]}
    with open(path, "wb") as fh:
        pickle.dump(d, fh, protocol=2)


# ------------------------------------------------------------------ ResNet-18
def resnet18_cifar(out_dim: int, base_width: int = 64) -> Any:
    """ResNet-18, CIFAR variant: 3×3 stem, no max-pool, [2, 2, 2, 2] BasicBlocks at
    ``w, 2w, 4w, 8w`` channels (strides 1, 2, 2, 2), global average pool, Linear → out_dim.

    ``base_width = 64`` is the standard network; smaller values give cheap variants
    (tests).  For 32 × 32 inputs the global pool equals the usual 4 × 4 average pool.
    """
    from torch import nn
    from torch.nn import functional as F

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x: Any) -> Any:
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = base_width
            self.stem = nn.Sequential(nn.Conv2d(3, w, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(w), nn.ReLU())
            layers, cin = [], w
            for cout, stride in ((w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)):
                layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.head = nn.Linear(8 * w, out_dim)

        def forward(self, x: Any) -> Any:
            h = self.layers(self.stem(x))
            return self.head(F.adaptive_avg_pool2d(h, 1).flatten(1))

    if out_dim < 1 or base_width < 1:
        raise InvalidParameterError("out_dim and base_width must be positive")
    return ResNet18()


# ------------------------------------------------------------------ training
@dataclass(frozen=True)
class CifarConfig:
    dims: tuple[int, ...] = (2, 3, 5)
    seeds: int = 10
    steps: int = 20_000
    lr: float = 1e-4
    batch_size: int = 32
    base_width: int = 64
    g_width: int = 128
    eval_every: int = 2_000
    data_seed: int = 0
    max_train: int | None = None
    max_test: int | None = None
    n_candidates: int = 200
    search_seed: int = 0

    RESUME_KEYS = ("steps", "lr", "batch_size", "base_width", "g_width", "data_seed",
                   "max_train", "max_test", "n_candidates", "search_seed")


def _normalise(xb: Any) -> Any:
    return (xb.float() / 255.0 - 0.5) / 0.5


def _train_one(data: CIFAR10, dim: int, seed: int, cfg: CifarConfig, device: Any,
               bar: Any, task: Any) -> dict[str, Any]:
    import torch

    k = len(data.label_names)
    torch.manual_seed(seed)
    f_net = resnet18_cifar(dim, cfg.base_width).to(device)
    g_net = make_mlp(k - 1, cfg.g_width, dim).to(device)
    codes = torch.as_tensor(one_hot_codes(k)).to(device)
    xtr = torch.as_tensor(data.x_train).to(device)
    ytr = torch.as_tensor(data.y_train).to(device)
    opt = torch.optim.Adam([*f_net.parameters(), *g_net.parameters()], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.data_seed)
    test_log: list[float] = []
    step, n = 0, int(xtr.shape[0])
    if n < 2 or cfg.batch_size < 2:
        raise InvalidParameterError("training needs at least 2 images and batch_size >= 2")
    f_net.train()
    g_net.train()
    while step < cfg.steps:
        perm = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            if idx.numel() < 2:  # BatchNorm needs more than one sample
                continue
            logits = (f_net(_normalise(xtr[idx])) @ g_net(codes).T).double()
            loss = torch.nn.functional.cross_entropy(logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.advance(task)
            if step % cfg.eval_every == 0:
                test_log.append(_evaluate(f_net, g_net, codes, data.x_test, data.y_test,
                                          device)[0])
                f_net.train()
                g_net.train()
            if step >= cfg.steps:
                break
    test_loss, f_test, g_all = _evaluate(f_net, g_net, codes, data.x_test, data.y_test, device)
    f_train = _embed(f_net, data.x_train, device)
    pred = np.argmax(f_test @ g_all.T, axis=1)
    return {
        "F_train": f_train, "F_test": f_test, "G": g_all, "pred_test": pred,
        "test_loss": test_loss, "test_loss_log": np.asarray(test_log),
        "accuracy": float(np.mean(pred == data.y_test)),
        "f_state": {k: v.detach().cpu() for k, v in f_net.state_dict().items()},
        "g_state": {k: v.detach().cpu() for k, v in g_net.state_dict().items()},
    }


def _embed(f_net: Any, x: np.ndarray, device: Any, batch: int = 256) -> np.ndarray:
    import torch

    f_net.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            xb = torch.as_tensor(x[s : s + batch]).to(device)
            out.append(f_net(_normalise(xb)).double().cpu().numpy())
    return np.concatenate(out)


def _evaluate(f_net: Any, g_net: Any, codes: Any, x: np.ndarray, y: np.ndarray, device: Any
              ) -> tuple[float, np.ndarray, np.ndarray]:
    import torch

    from repscope.identifiability.model import log_softmax

    f = _embed(f_net, x, device)
    g_net.eval()
    with torch.no_grad():
        g = g_net(codes).double().cpu().numpy()
    ll = log_softmax(f @ g.T, axis=1)
    return float(-np.mean(ll[np.arange(len(y)), y])), f, g


def _mcca(x: np.ndarray, y: np.ndarray) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        try:
            return m_cca(x, y)
        except RepscopeError:
            return None


def run_cifar10(
    data_dir: str | Path | CIFAR10,
    out_dir: str | Path,
    config: CifarConfig | None = None,
    *,
    device: str = "auto",
    progress: bool = True,
    **overrides: Any,
) -> Any:
    """Train (or resume) every (M, seed), compare every pair, draw Fig. 5 and Fig. 3 left.

    ``data_dir`` is the directory of the CIFAR-10 python batches (or an already
    loaded :class:`CIFAR10`).  Returns the pair table (one row per
    (M, seed_a, seed_b)) as a DataFrame.

    Raises
    ------
    DatasetNotFoundError
        ``data_dir`` does not hold the CIFAR-10 python batches.
    """
    from dataclasses import asdict, replace

    import torch

    cfg = replace(config or CifarConfig(), **overrides)
    if cfg.seeds < 2 or not cfg.dims or min(cfg.dims) < 1 or cfg.steps < 1:
        raise InvalidParameterError("need >= 2 seeds, positive dims and steps")
    data = data_dir if isinstance(data_dir, CIFAR10) else load_cifar10(data_dir)
    if cfg.max_train is not None or cfg.max_test is not None:
        data = CIFAR10(data.x_train[: cfg.max_train], data.y_train[: cfg.max_train],
                       data.x_test[: cfg.max_test], data.y_test[: cfg.max_test],
                       data.label_names)
    out = Path(out_dir)
    check_config(out, {"experiment": "cifar10", **asdict(cfg)}, keys=cfg.RESUME_KEYS)
    dev = pick_device(device)
    models_dir = out / "models"
    pairs = ResultsTable(out / "pairs.csv", key=("dim", "seed_a", "seed_b"))
    todo_models = [(m, s) for m in cfg.dims for s in range(cfg.seeds)
                   if not (models_dir / f"M{m}_seed{s}.npz").exists()]
    with make_progress(progress) as bar:
        task = bar.add_task(f"cifar10: training on {dev}", total=len(todo_models) * cfg.steps)
        for m, s in todo_models:
            bar.update(task, description=f"cifar10: training M={m} seed={s} on {dev}")
            res = _train_one(data, m, s, cfg, dev, bar, task)
            models_dir.mkdir(parents=True, exist_ok=True)
            torch.save({"f": res.pop("f_state"), "g": res.pop("g_state"), "dim": m, "seed": s,
                        "base_width": cfg.base_width, "device": str(dev)},
                       models_dir / f"M{m}_seed{s}.pt")
            np.savez(models_dir / f"M{m}_seed{s}.npz", **res)
        done = pairs.done()
        todo = [(m, a, b) for m in cfg.dims for a, b in itertools.combinations(range(cfg.seeds), 2)
                if (m, a, b) not in done]
        ptask = bar.add_task("cifar10: pairs", total=len(todo))
        for m in cfg.dims:
            loaded = {s: dict(np.load(models_dir / f"M{m}_seed{s}.npz", allow_pickle=False))
                      for s in range(cfg.seeds)}
            rows = []
            for mm, a, b in todo:
                if mm != m:
                    continue
                rows.append(_pair_row(m, a, b, loaded[a], loaded[b], cfg))
                bar.advance(ptask)
            pairs.append(rows)
    df = pairs.frame()
    df = df[df["dim"].isin(list(cfg.dims)) & (df["seed_a"] < cfg.seeds)
            & (df["seed_b"] < cfg.seeds)].sort_values(["dim", "seed_a", "seed_b"])
    df = df.reset_index(drop=True)
    plot_loss_vs_mcca(df[df["m_cca_f_test"].notna()], out / "fig5_loss_diff_vs_mcca")
    if 2 in cfg.dims:
        panels = []
        for s in (0, 1):
            z = np.load(models_dir / f"M2_seed{s}.npz", allow_pickle=False)
            panels.append({"F": z["F_test"], "G": z["G"], "pred": z["pred_test"],
                           "title": f"seed {s}"})
        plot_embeddings(panels, out / "fig3_left_embeddings", class_names=data.label_names)
    return df


def _pair_row(m: int, a: int, b: int, za: dict[str, np.ndarray], zb: dict[str, np.ndarray],
              cfg: CifarConfig) -> dict[str, Any]:
    row: dict[str, Any] = {
        "dim": m, "seed_a": a, "seed_b": b,
        "m_cca_f_train": _mcca(za["F_train"], zb["F_train"]),
        "m_cca_f_test": _mcca(za["F_test"], zb["F_test"]),
        "m_cca_g": _mcca(za["G"], zb["G"]),
        "test_loss_a": float(za["test_loss"]), "test_loss_b": float(zb["test_loss"]),
        "loss_diff": abs(float(za["test_loss"]) - float(zb["test_loss"])),
        "acc_a": float(za["accuracy"]), "acc_b": float(zb["accuracy"]),
    }
    try:
        ma = SoftmaxModel(za["F_test"], za["G"])
        mb = SoftmaxModel(zb["F_test"], zb["G"])
    except RepscopeError as e:
        row.update({"kl": None, "d_llv": None, "d_fg": None,
                    "error": f"{type(e).__name__}: {e}"})
        return row
    row.update(pair_metrics(ma, mb, n_candidates=cfg.n_candidates, seed=cfg.search_seed))
    return row
