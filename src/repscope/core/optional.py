"""Optional dependencies: import one, or say which extra installs it.

repscope's core needs only NumPy, SciPy and a few small packages; pandas,
matplotlib, torch, transformers, Zarr and Dask belong to extras
(``pyproject.toml``: ``[project.optional-dependencies]``).  Every user-facing
path that needs one of them imports it through :func:`require`, so a missing
package is a :class:`~repscope.core.errors.MissingDependencyError` (a
``RepscopeError`` and an ``ImportError``) naming the command that installs it::

    pd = require("pandas", "ml", purpose="ResultTable.to_pandas()")
"""

from __future__ import annotations

import importlib
from types import ModuleType

from repscope.core.errors import MissingDependencyError

__all__ = ["EXTRAS", "install_hint", "require"]

#: top-level module -> the repscope extra that installs it
EXTRAS: dict[str, str] = {
    "pandas": "ml",
    "matplotlib": "ml",
    "torch": "torch",
    "transformers": "hf",
    "tokenizers": "hf",
    "safetensors": "hf",
    "zarr": "store",
    "dask": "dask",
    "distributed": "dask",
}


def install_hint(module: str, extra: str | None = None) -> str:
    """The pip command that installs ``module``: ``pip install "repscope[extra]"``.

    ``extra`` defaults to the one listed in :data:`EXTRAS`; a module of no extra
    gets ``pip install <module>``.
    """
    top = module.split(".", 1)[0]
    extra = extra or EXTRAS.get(top)
    return f'pip install "repscope[{extra}]"' if extra else f"pip install {top}"


def require(module: str, extra: str | None = None, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"pandas"`` or ``"matplotlib.figure"``) or explain how to get it.

    Parameters
    ----------
    module : the module to import.
    extra : the repscope extra that installs it (default: :data:`EXTRAS`).
    purpose : what needs it, for the message (e.g. ``"ResultTable.to_pandas()"``).

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependencyError
        ``module`` (or a package it imports) is not installed; the message names
        the missing package and the pip command.  An installed package that fails
        to import for another reason raises its own error.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".", 1)[0]
        missing = (exc.name or top).split(".", 1)[0]
        what = f"{purpose} needs" if purpose else "this needs"
        note = "" if missing == top else f" ({missing}, which it needs, is missing)"
        err = MissingDependencyError(
            f"{what} {top}, which is not installed{note}; install it with: "
            f"{install_hint(top, extra)}"
        )
        err.name = missing
        raise err from exc
