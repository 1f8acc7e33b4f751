"""Optional dependencies: a missing one is a repscope error naming the extra that installs it.

Absence is simulated with ``sys.modules[name] = None``, which makes ``import name``
raise ``ModuleNotFoundError`` as if the package were not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from repscope.core.errors import MissingDependencyError, RepscopeError, for_cli
from repscope.core.optional import install_hint, require


def _absent(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_require_returns_the_module() -> None:
    import json

    assert require("json") is json


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _absent(monkeypatch, "pandas")
    with pytest.raises(MissingDependencyError) as info:
        require("pandas", purpose="something")
    err = info.value
    assert isinstance(err, ImportError) and isinstance(err, RepscopeError)
    assert err.name == "pandas"
    assert str(err) == ('something needs pandas, which is not installed; install it with: '
                        'pip install "repscope[ml]"')
    assert isinstance(err.__cause__, ModuleNotFoundError)


def test_require_of_a_submodule_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    _absent(monkeypatch, "matplotlib", "matplotlib.figure")
    with pytest.raises(MissingDependencyError, match=r'needs matplotlib.*repscope\[ml\]'):
        require("matplotlib.figure")


def test_install_hints() -> None:
    assert install_hint("transformers") == 'pip install "repscope[hf]"'
    assert install_hint("zarr") == 'pip install "repscope[store]"'
    assert install_hint("distributed") == 'pip install "repscope[dask]"'
    assert install_hint("torch.nn") == 'pip install "repscope[torch]"'
    assert install_hint("pyarrow") == "pip install pyarrow"
    assert install_hint("pandas", "ml") == 'pip install "repscope[ml]"'


def test_result_table_to_pandas_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    import repscope

    table = repscope.compare(np.eye(6)[:, :3] + np.arange(6)[:, None], np.arange(12.0)
                             .reshape(6, 2) ** 2, measures=["cka"])
    _absent(monkeypatch, "pandas")
    with pytest.raises(MissingDependencyError, match=r'ResultTable.to_pandas\(\) needs '
                       r'pandas.*pip install "repscope\[ml\]"'):
        table.to_pandas()


def test_results_db_to_pandas_without_pandas(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    from repscope.storage.results_db import ResultsDB

    _absent(monkeypatch, "pandas")
    with ResultsDB(tmp_path / "r.sqlite") as db, \
            pytest.raises(MissingDependencyError, match=r'repscope\[ml\]'):
        db.to_pandas()


def test_extraction_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    from repscope.extract import list_layers

    _absent(monkeypatch, "torch")
    with pytest.raises(MissingDependencyError, match=r'needs torch.*repscope\[torch\]'):
        list_layers(object())


def test_load_hf_without_transformers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from repscope.extract import load_hf

    (tmp_path / "config.json").write_text("{}")
    _absent(monkeypatch, "transformers")
    with pytest.raises(MissingDependencyError, match=r'needs transformers.*repscope\[hf\]'):
        load_hf(tmp_path)


def test_activation_store_without_zarr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from repscope.storage.activation_store import ActivationStore

    _absent(monkeypatch, "zarr")
    with pytest.raises(MissingDependencyError, match=r'needs zarr.*repscope\[store\]'):
        ActivationStore(tmp_path / "acts")


def test_dask_without_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    from repscope.engine.dask_clients import import_distributed

    _absent(monkeypatch, "distributed")
    with pytest.raises(MissingDependencyError, match=r'Dask needs distributed.*repscope\[dask\]'):
        import_distributed()


def test_stitching_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    from repscope.probing import stitching

    _absent(monkeypatch, "torch")
    with pytest.raises(MissingDependencyError, match=r'repscope\[torch\]'):
        stitching._torch()


def test_cli_hints_replace_python_hints() -> None:
    msg = "unknown measure 'ckaa'; did you mean cka? (repscope.list_measures() lists all)"
    assert for_cli(msg) == ("unknown measure 'ckaa'; did you mean cka? "
                            "(run `repscope measures` to list them)")
    assert for_cli("nothing to replace") == "nothing to replace"
