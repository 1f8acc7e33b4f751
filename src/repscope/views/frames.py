"""Result tables as one pandas DataFrame, whatever they came from."""

from __future__ import annotations

from typing import Any

from repscope.core.errors import RepscopeError
from repscope.core.optional import require

__all__ = ["PAIR_DEFAULTS", "as_frame"]

#: filled in when a table has no pair columns (``compare(X, Y)`` compares one pair)
PAIR_DEFAULTS = {"model_a": "A", "layer_a": "X", "model_b": "B", "layer_b": "Y"}


def as_frame(results: Any) -> Any:
    """A DataFrame copy of a :class:`~repscope.ResultTable` or DataFrame of results.

    Tables without pair columns (one ``compare`` call) get ``model_a = "A"``,
    ``layer_a = "X"``, ``model_b = "B"``, ``layer_b = "Y"``; a missing
    ``dataset`` stays missing, a missing value in it becomes ``""``; the index is
    renumbered.
    """
    pd = require("pandas", purpose="a report or figure of results")
    if isinstance(results, pd.DataFrame):
        df = results.copy()
    elif hasattr(results, "to_pandas"):
        df = results.to_pandas()
    else:
        raise RepscopeError(f"expected a ResultTable or a pandas DataFrame of results, got "
                            f"{type(results).__name__}")
    df = df.reset_index(drop=True)  # a concatenation's repeated labels would mix rows
    if "measure" not in df.columns or "value" not in df.columns:
        raise RepscopeError("a results table needs the columns 'measure' and 'value'")
    for col, default in PAIR_DEFAULTS.items():
        if col not in df.columns:
            df[col] = default
    if "dataset" in df.columns:
        df["dataset"] = df["dataset"].where(df["dataset"].notna(), "")
    if "n" not in df.columns:
        df["n"] = float("nan")
    return df
