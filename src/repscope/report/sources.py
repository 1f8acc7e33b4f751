"""What a report can be built from: a ResultTable, a DataFrame or a study folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repscope.core.errors import RepscopeError
from repscope.views.frames import as_frame

__all__ = ["findings_page", "load_results"]


def findings_page(folder: str | Path) -> Path | None:
    """The ``repscope findings`` page next to a study folder, when present: ``findings.html``
    in the folder, in ``folder/findings*/`` or in a sibling ``findings*`` folder (the
    newest)."""
    folder = Path(folder)
    pages = [folder / "findings.html", *folder.glob("findings*/findings.html"),
             *folder.parent.glob("findings*/findings.html")]
    found = [p for p in pages if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None

def _from_folder(folder: Path) -> tuple[Any, dict[str, Any]]:
    from repscope.storage.results_db import ResultsDB

    db_path = folder / "results.sqlite"
    if not db_path.exists():
        raise RepscopeError(f"no results database at {db_path}; run `repscope run` on a study "
                            "file first, or pass a ResultTable or DataFrame")
    with ResultsDB(db_path) as db:
        db.check()
        results = db.to_pandas()
    extras: dict[str, Any] = {}
    path = folder / "extras.json"
    if path.exists():
        try:
            extras = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RepscopeError(f"{path} is not readable JSON ({exc}); delete it and re-run "
                                "the study to rebuild it") from exc
    if "grounding" not in extras:  # repscope ground's result beside the study's, if any
        from repscope.report.grounding_page import find_grounding

        found = find_grounding(folder)
        if found is not None:
            extras["grounding"] = found
    return results, extras


def load_results(source: Any) -> tuple[Any, dict[str, Any]]:
    """``(DataFrame, extras)`` from a ResultTable, a DataFrame or a study folder
    (:func:`repscope.views.frames.as_frame` for tables)."""
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if folder.is_file() and folder.name == "results.sqlite":
            folder = folder.parent
        if not folder.is_dir():
            raise RepscopeError(f"{folder} is not a study folder (expected a folder with "
                                "results.sqlite)")
        return _from_folder(folder)
    if source is None:
        return None, {}
    return as_frame(source), {}
