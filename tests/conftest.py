from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

# pytest-xdist runs one worker per core: one BLAS/OpenMP thread each avoids
# oversubscription (OpenBLAS threads spinning against each other on 2 cores).
threadpool_limits(limits=1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a test dependency
    pass


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
