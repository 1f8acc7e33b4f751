"""docs/study-format.md is generated from the study-file schema and must match it."""

from __future__ import annotations

from pathlib import Path

from repscope.study.format_doc import study_format
from repscope.study.schema import StudyFile

ROOT = Path(__file__).resolve().parents[2]


def test_study_format_page_in_sync() -> None:
    page = (ROOT / "docs" / "study-format.md").read_text(encoding="utf-8")
    assert page == study_format(), (
        "docs/study-format.md is stale: run `python -m repscope.study.format_doc`"
    )


def test_page_documents_every_key_and_running_code() -> None:
    page = study_format()
    for table, field in StudyFile.model_fields.items():
        assert f"[{table}]" in page
        cls = field.annotation.__args__[0] if table == "models" else field.annotation
        for key in cls.model_fields:
            assert f"| `{key}` |" in page, (table, key)
    assert "runs code like a script" in page.replace("**", "")
    assert "--trust MODULE" in page and "Nothing\ninside a study file can grant trust" in page
