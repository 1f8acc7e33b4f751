"""Progress bars are on by default in interactive sessions, off otherwise; explicit flags win."""

from __future__ import annotations

import io
import sys
import types

import numpy as np
import pytest

import repscope
from repscope.core import progress as progress_mod
from repscope.core.progress import in_ipython, interactive, progress_bar, show_progress


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _fake_ipython(monkeypatch: pytest.MonkeyPatch, shell: object | None) -> None:
    mod = types.ModuleType("IPython")
    mod.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", mod)


@pytest.fixture
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5))
    return x, x @ rng.standard_normal((5, 4))


def test_not_interactive_under_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not interactive() and not in_ipython()
    assert show_progress(None) is False
    assert show_progress(True) is True and show_progress(False) is False


def test_a_terminal_is_interactive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert interactive() and show_progress(None)
    assert show_progress(False) is False  # an explicit False still wins


def test_ipython_and_jupyter_are_interactive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _fake_ipython(monkeypatch, shell=None)  # IPython imported, but no shell running
    assert not in_ipython() and not interactive()
    _fake_ipython(monkeypatch, shell=object())
    assert in_ipython() and interactive() and show_progress(None)


def test_progress_bar_auto_follows_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[bool] = []
    real = progress_mod.new_progress
    monkeypatch.setattr(progress_mod, "new_progress",
                        lambda enabled=True: made.append(enabled) or real(enabled=False))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_bar(5, "x", None) as advance:
        advance(1)
    assert made == []
    _fake_ipython(monkeypatch, shell=object())
    with progress_bar(5, "x", None) as advance:
        advance(1)
    assert made == [True]
    with progress_bar(1, "x", None):  # a single step gets no bar
        pass
    with progress_bar(5, "x", False):
        pass
    assert made == [True]


def test_compare_draws_a_bar_on_a_terminal_by_default(monkeypatch: pytest.MonkeyPatch,
                                                      xy) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    repscope.compare(*xy, measures=["cka", "procrustes"])
    assert "compare" in term.getvalue() and "2/2" in term.getvalue()
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    repscope.compare(*xy, measures=["cka", "procrustes"], progress=False)
    assert quiet.getvalue() == ""


def test_grid_is_silent_when_nobody_watches(monkeypatch: pytest.MonkeyPatch, xy) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    reps = {("a", "l1"): xy[0], ("b", "l1"): xy[1], ("b", "l2"): xy[1] ** 2}
    repscope.grid(reps, measures=["cka"])
    assert log.getvalue() == ""
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    repscope.grid(reps, measures=["cka"])
    assert "grid" in term.getvalue() and "2/2" in term.getvalue()
    forced = io.StringIO()  # not a terminal, but asked for
    monkeypatch.setattr(sys, "stderr", forced)
    repscope.grid(reps, measures=["cka"], progress=True)
    assert "grid" in forced.getvalue()
