"""Tests of extraction from torch modules by module name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from repscope.core.errors import RepscopeError  # noqa: E402
from repscope.extract import (  # noqa: E402
    Activations,
    ExtractionError,
    UnknownLayerError,
    dataset_hash,
    extract_torch,
    list_layers,
    weights_hash,
)
from repscope.storage.activation_store import ActivationStore  # noqa: E402
from repscope.storage.entry_writer import EntryExistsError  # noqa: E402


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.conv2 = nn.Conv2d(4, 3, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))

    def forward(self, x):
        x = self.drop(self.act1(self.conv1(x)))
        x = self.pool(self.conv2(x))
        return self.head(x)


def _manual(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Independent reference: the intermediate tensors computed by hand in eval mode."""
    model.eval()
    with torch.no_grad():
        c1 = model.conv1(x)
        a1 = model.act1(c1)
        c2 = model.conv2(a1)
        p = model.pool(c2)
        out = model.head(p)
    return {"conv1": c1, "act1": a1, "conv2": c2, "pool": p, "head": out}


@pytest.fixture
def cnn() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN()


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((23, 1, 6, 6))


def test_list_layers(cnn: SmallCNN) -> None:
    names = list_layers(cnn)
    assert names == [
        "conv1", "act1", "drop", "conv2", "pool", "head", "head.0", "head.1",
    ]  # fmt: skip
    assert "head" not in list_layers(cnn, leaves_only=True)
    assert "head.1" in list_layers(cnn, leaves_only=True)
    with pytest.raises(RepscopeError, match="torch.nn.Module"):
        list_layers(object())


def test_matches_manual_forward_flatten_and_mean(cnn: SmallCNN, images: np.ndarray) -> None:
    ref = _manual(cnn, torch.as_tensor(images, dtype=torch.float32))
    cnn.train()
    flat = extract_torch(cnn, images, ["conv1", "conv2", "head"], batch_size=5, progress=False)
    assert isinstance(flat, Activations) and list(flat) == ["conv1", "conv2", "head"]
    assert flat["conv1"].shape == (23, 4 * 36) and flat["conv1"].dtype == np.float32
    np.testing.assert_allclose(flat["conv1"], ref["conv1"].reshape(23, -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(flat["head"], ref["head"].numpy(), atol=1e-6)
    mean = extract_torch(cnn, images, ["conv2", "head"], spatial="mean", progress=False)
    assert mean["conv2"].shape == (23, 3)
    np.testing.assert_allclose(mean["conv2"], ref["conv2"].mean(dim=(2, 3)).numpy(), atol=1e-6)
    np.testing.assert_allclose(mean["head"], ref["head"].numpy(), atol=1e-6)  # 2-D: unchanged


def test_batch_size_and_input_forms_agree(cnn: SmallCNN, images: np.ndarray) -> None:
    x = torch.as_tensor(images, dtype=torch.float32)
    base = extract_torch(cnn, x, "pool", batch_size=23, progress=False)["pool"]
    for bs in (1, 4, 7):
        np.testing.assert_allclose(
            extract_torch(cnn, x, "pool", batch_size=bs, progress=False)["pool"], base, atol=1e-6
        )
    batches = [(x[i : i + 6], torch.zeros(len(x[i : i + 6]))) for i in range(0, 23, 6)]
    np.testing.assert_allclose(extract_torch(cnn, batches, "pool")["pool"], base, atol=1e-6)
    gen = (x[i : i + 4] for i in range(0, 23, 4))
    from_gen = extract_torch(cnn, gen, "pool")
    np.testing.assert_allclose(from_gen["pool"], base, atol=1e-6)
    assert from_gen.provenance["dataset_sha256"] == dataset_hash(x)  # hashed on the fly
    assert from_gen.provenance["model"] == "SmallCNN" and from_gen.store is None
    ds = torch.utils.data.TensorDataset(x, torch.arange(23))
    np.testing.assert_allclose(
        extract_torch(cnn, ds, "pool", batch_size=10)["pool"], base, atol=1e-6
    )
    loader = torch.utils.data.DataLoader(ds, batch_size=8)
    np.testing.assert_allclose(extract_torch(cnn, loader, "pool")["pool"], base, atol=1e-6)


def test_mapping_batches_and_custom_forward() -> None:
    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 2)
            self.b = nn.Linear(2, 2)

        def forward(self, x, scale):
            return self.b(self.a(x) * scale)

    torch.manual_seed(1)
    m = TwoInputs()
    x = torch.randn(10, 3)
    with torch.no_grad():
        ref = (m.a(x) * 2.0).numpy()
    got = extract_torch(m, [{"x": x[:4], "scale": 2.0}, {"x": x[4:], "scale": 2.0}], "a")
    np.testing.assert_allclose(got["a"] * 2.0, ref, atol=1e-6)
    got = extract_torch(m, x, ["a"], batch_size=3, forward=lambda mod, b: mod(b, 2.0))
    np.testing.assert_allclose(got["a"] * 2.0, ref, atol=1e-6)


def test_float64_input_is_cast_and_output_dtype(cnn: SmallCNN, images: np.ndarray) -> None:
    acts = extract_torch(cnn, images.astype(np.float64), ["head"], dtype=np.float64)
    assert acts["head"].dtype == np.float64
    with pytest.raises(RepscopeError, match="floating"):
        extract_torch(cnn, images, ["head"], dtype=np.int32)


def test_eval_mode_used_and_modes_restored(cnn: SmallCNN, images: np.ndarray) -> None:
    cnn.train()
    cnn.head.eval()  # mixed modes must come back exactly
    seen = []
    cnn.drop.register_forward_pre_hook(lambda mod, inp: seen.append(mod.training))
    a = extract_torch(cnn, images, ["act1", "drop"], progress=False)
    assert seen and not any(seen)  # dropout ran in eval mode
    np.testing.assert_array_equal(a["act1"], a["drop"])  # so it was the identity
    assert cnn.training and cnn.conv1.training and cnn.drop.training
    assert not cnn.head.training and not cnn.head[0].training


def test_no_grad_and_hooks_removed(cnn: SmallCNN, images: np.ndarray) -> None:
    grad_flags = []
    cnn.conv2.register_forward_pre_hook(lambda mod, inp: grad_flags.append(torch.is_grad_enabled()))
    before = {n: len(m._forward_hooks) for n, m in cnn.named_modules()}
    extract_torch(cnn, images, ["conv1", "conv2", "head.1"], progress=False)
    assert grad_flags and not any(grad_flags)
    assert torch.is_grad_enabled()
    assert {n: len(m._forward_hooks) for n, m in cnn.named_modules()} == before


def test_hooks_removed_and_mode_restored_on_error(cnn: SmallCNN, images: np.ndarray) -> None:
    cnn.train()
    calls = {"n": 0}

    def failing_batches():
        yield torch.as_tensor(images[:4], dtype=torch.float32)
        calls["n"] += 1
        raise RuntimeError("data loader died")

    with pytest.raises(RuntimeError, match="data loader died"):
        extract_torch(cnn, failing_batches(), ["conv1", "conv2"])
    assert calls["n"] == 1
    assert all(len(m._forward_hooks) == 0 for m in cnn.modules())
    assert all(m.training for m in cnn.modules())

    def bad_forward(model, batch):
        model(batch)
        raise ValueError("forward failed")

    with pytest.raises(ValueError, match="forward failed"):
        extract_torch(cnn, images, ["conv1"], forward=bad_forward)
    assert all(len(m._forward_hooks) == 0 for m in cnn.modules())
    assert cnn.training


def test_unknown_layer_names(cnn: SmallCNN, images: np.ndarray) -> None:
    with pytest.raises(UnknownLayerError, match="'conv1'") as info:
        extract_torch(cnn, images, ["conv_1"])
    assert "list_layers" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, RepscopeError)
    with pytest.raises(UnknownLayerError, match="state_dict key.*'conv1'"):
        extract_torch(cnn, images, ["conv1.weight"])
    with pytest.raises(UnknownLayerError, match="whole model"):
        extract_torch(cnn, images, [""])
    with pytest.raises(RepscopeError, match="twice"):
        extract_torch(cnn, images, ["conv1", "conv1"])
    with pytest.raises(RepscopeError, match="no layers"):
        extract_torch(cnn, images, [])
    assert all(len(m._forward_hooks) == 0 for m in cnn.modules())


def test_module_not_called_or_called_twice() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.unused = nn.Linear(3, 3)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.fc(self.relu(x)))

    m = Odd()
    x = torch.randn(4, 3)
    with pytest.raises(ExtractionError, match="did not run"):
        extract_torch(m, x, ["unused"])
    with pytest.raises(ExtractionError, match="ran 2 times"):
        extract_torch(m, x, ["relu"])
    np.testing.assert_allclose(
        extract_torch(m, x, ["fc"])["fc"], m.fc(torch.relu(x)).detach().numpy(), atol=1e-6
    )


def test_output_not_batch_first() -> None:
    class SeqFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(3, 4)  # (seq, batch, feat) layout

        def forward(self, x):
            return self.rnn(x.transpose(0, 1))

    with pytest.raises(ExtractionError, match="first axis is not the batch"):
        extract_torch(SeqFirst(), torch.randn(5, 7, 3), ["rnn"])


def test_tuple_outputs_use_first_tensor() -> None:
    class WithLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 4, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]

    torch.manual_seed(0)
    m = WithLSTM()
    x = torch.randn(6, 5, 3)
    got = extract_torch(m, x, ["lstm"])["lstm"]
    assert got.shape == (6, 20)
    np.testing.assert_allclose(got, m(x).detach().reshape(6, -1).numpy(), atol=1e-6)


def test_one_dim_outputs_become_columns() -> None:
    class Scalar(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 1)
            self.squeeze = nn.Flatten(0)

        def forward(self, x):
            return self.squeeze(self.fc(x))

    x = torch.randn(8, 3)
    assert extract_torch(Scalar(), x, ["squeeze"])["squeeze"].shape == (8, 1)


def test_bad_arguments(cnn: SmallCNN, images: np.ndarray) -> None:
    with pytest.raises(RepscopeError, match="spatial"):
        extract_torch(cnn, images, ["conv1"], spatial="max")
    with pytest.raises(RepscopeError, match="batch_size"):
        extract_torch(cnn, images, ["conv1"], batch_size=0)
    with pytest.raises(RepscopeError, match="empty"):
        extract_torch(cnn, images[:0], ["conv1"])
    with pytest.raises(RepscopeError, match="iterable of batches"):
        extract_torch(cnn, 3.0, ["conv1"])
    with pytest.raises(ExtractionError, match="empty"):
        extract_torch(cnn, [], ["conv1"])
    with pytest.raises(RepscopeError, match="invalid device"):
        extract_torch(cnn, images, ["conv1"], device="not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(RepscopeError, match="CUDA is not available"):
            extract_torch(cnn, images, ["conv1"], device="cuda")
    with pytest.raises(RepscopeError, match="torch.nn.Module"):
        extract_torch(lambda x: x, images, ["conv1"])


def test_explicit_cpu_device(cnn: SmallCNN, images: np.ndarray) -> None:
    a = extract_torch(cnn, images, ["head"], device="cpu")["head"]
    b = extract_torch(cnn, images, ["head"])["head"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_device_moves_model_and_back(cnn: SmallCNN, images: np.ndarray) -> None:
    cpu = extract_torch(cnn, images, ["conv2", "head"])
    gpu = extract_torch(cnn, images, ["conv2", "head"], device="cuda")
    assert next(cnn.parameters()).device.type == "cpu"  # moved back
    for k in cpu:
        assert isinstance(gpu[k], np.ndarray)
        np.testing.assert_allclose(gpu[k], cpu[k], atol=1e-4)
    cnn.cuda()
    on_gpu = extract_torch(cnn, images, ["conv2"], spatial="mean")
    assert next(cnn.parameters()).device.type == "cuda"
    np.testing.assert_allclose(on_gpu["conv2"], cpu["conv2"].reshape(23, 3, 36).mean(-1), atol=1e-4)


def test_progress_flag(cnn: SmallCNN, images: np.ndarray, capfd) -> None:
    extract_torch(cnn, images, ["conv1"], batch_size=4, progress=False)
    assert capfd.readouterr().err == ""
    extract_torch(cnn, images, ["conv1"], batch_size=4, progress=True)
    err = capfd.readouterr().err
    assert "extract SmallCNN" in err and "6/6" in err


def test_hashes(cnn: SmallCNN, images: np.ndarray) -> None:
    h = weights_hash(cnn)
    assert len(h) == 64 and h == weights_hash(cnn)
    torch.manual_seed(0)
    assert weights_hash(SmallCNN()) == h  # same seed, same weights
    with torch.no_grad():
        cnn.conv1.bias[0] += 1e-7
    assert weights_hash(cnn) != h
    assert dataset_hash(images) == dataset_hash(torch.as_tensor(images))
    assert dataset_hash(images) != dataset_hash(images[::-1].copy())
    assert dataset_hash(images) != dataset_hash(images.astype(np.float32))


def test_store_streaming_and_provenance(cnn: SmallCNN, images: np.ndarray, tmp_path: Path) -> None:
    ref = extract_torch(cnn, images, ["conv1", "head"], progress=False)
    store = ActivationStore(tmp_path / "s")
    acts = extract_torch(
        cnn, images, ["conv1", "head"], batch_size=4, store=store, model_id="cnn",
        dataset_id="noise", chunk_rows=5,
    )  # fmt: skip
    assert acts.store_keys == {"conv1": "cnn/conv1/flatten", "head": "cnn/head/flatten"}
    assert not isinstance(acts["conv1"], np.ndarray)  # lazy
    np.testing.assert_array_equal(acts.load("conv1"), ref["conv1"])
    np.testing.assert_array_equal(store.load("cnn/head/flatten"), ref["head"])
    assert store.open("cnn/conv1/flatten").chunks == (5, 144)
    p = store.provenance("cnn/conv1/flatten")
    assert p["model"] == "cnn" and p["layer"] == "conv1" and p["pooling"] == "flatten"
    assert p["weights_sha256"] == weights_hash(cnn)
    assert p["dataset"] == "noise" and p["dataset_sha256"] == dataset_hash(images)
    assert (p["n"], p["d"], p["dtype"]) == (23, 144, "float32")


def test_store_reuse_and_conflicts(cnn: SmallCNN, images: np.ndarray, tmp_path: Path) -> None:
    store = ActivationStore(tmp_path / "s")
    extract_torch(cnn, images, ["conv1"], store=store, model_id="cnn")
    calls = []
    hook = cnn.register_forward_pre_hook(lambda mod, inp: calls.append(1))
    again = extract_torch(cnn, images, ["conv1"], store=store, model_id="cnn")
    assert calls == [] and again.reused == ("conv1",)  # nothing recomputed
    both = extract_torch(cnn, images, ["conv1", "conv2"], store=store, model_id="cnn")
    assert len(calls) == 1 and both.reused == ("conv1",)  # only conv2 computed
    hook.remove()
    with pytest.raises(EntryExistsError, match="dataset_sha256"):
        extract_torch(cnn, images[:10], ["conv1"], store=store, model_id="cnn")
    with pytest.raises(EntryExistsError, match="iterable"):
        extract_torch(cnn, [torch.as_tensor(images, dtype=torch.float32)], ["conv1"],
                      store=store, model_id="cnn")  # fmt: skip
    new = extract_torch(cnn, images[:10], ["conv1"], store=store, model_id="cnn", overwrite=True)
    assert new["conv1"].shape[0] == 10 and store.provenance("cnn/conv1/flatten")["n"] == 10


def test_store_iterable_dataset_hash_computed_on_the_fly(
    cnn: SmallCNN, images: np.ndarray, tmp_path: Path
) -> None:
    x = torch.as_tensor(images, dtype=torch.float32)
    store = ActivationStore(tmp_path / "s")
    extract_torch(cnn, (x[i : i + 5] for i in range(0, 23, 5)), ["head"], store=store)
    (key,) = store.keys()
    assert key.startswith("SmallCNN-") and key.endswith("/head/flatten")
    assert store.provenance(key)["dataset_sha256"] == dataset_hash(x)


def test_store_failure_leaves_nothing(cnn: SmallCNN, images: np.ndarray, tmp_path: Path) -> None:
    store = ActivationStore(tmp_path / "s")

    def batches():
        x = torch.as_tensor(images, dtype=torch.float32)
        yield x[:8]
        yield x[8:16]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_torch(cnn, batches(), ["conv1", "head"], store=store, chunk_rows=4)
    assert store.keys() == [] and store.staging_entries() == []


def test_store_memory_bounded(tmp_path: Path) -> None:
    """Streaming 4000 x 512 activations keeps NumPy allocations far below the total."""
    import tracemalloc

    model = nn.Sequential(nn.Linear(8, 512))
    store = ActivationStore(tmp_path / "s")
    x = torch.randn(4000, 8)
    tracemalloc.start()
    try:
        extract_torch(model, x, ["0"], batch_size=100, store=store, chunk_rows=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    total = 4000 * 512 * 4
    assert store.open(store.keys()[0]).shape == (4000, 512)
    assert peak < total / 4, f"peak {peak / 2**20:.2f} MiB vs {total / 2**20:.1f} MiB"
