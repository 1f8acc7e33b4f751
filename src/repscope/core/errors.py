"""Exceptions and warnings raised by repscope.

Every failure that repscope detects in user input raises a subclass of
:class:`RepscopeError` (itself a :class:`ValueError`, so generic handlers keep
working).  Regimes where a measure is defined but uninformative (for example
CCA with at least as many features as samples) emit a :class:`DegeneracyWarning`
instead.  repscope never returns NaN silently: a non-finite result raises
:class:`NonFiniteResultError`.
"""

from __future__ import annotations


class RepscopeError(ValueError):
    """Base class of every error repscope raises for bad input or configuration."""


class InputShapeError(RepscopeError):
    """An input has the wrong rank, is empty, or two inputs disagree in shape."""


class InputValueError(RepscopeError):
    """An input holds NaN/Inf, or has a non-numeric or complex dtype."""


class InsufficientSamplesError(RepscopeError):
    """Fewer samples than the measure needs."""


class DegenerateInputError(RepscopeError):
    """The measure is undefined for this input (e.g. an all-constant representation)."""


class UnknownMeasureError(RepscopeError, KeyError):
    """No measure is registered under this name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidParameterError(RepscopeError):
    """A measure parameter is unknown or out of its allowed range."""


class NonFiniteResultError(RepscopeError):
    """A computation produced NaN or Inf; repscope raises instead of returning it."""


class NumericalError(RepscopeError):
    """A numerical routine failed inside a measure (e.g. an eigensolver did not converge).

    Raised in place of the library's own exception (NumPy's ``LinAlgError``, a
    SciPy ``ValueError``, ...), which is kept as ``__cause__``; the message
    names the measure and the cause.
    """


class MissingDependencyError(RepscopeError, ImportError):
    """An optional dependency of the requested feature is not installed.

    Also an :class:`ImportError`, so ``except ImportError`` keeps working; the
    message names the pip command that installs it
    (:func:`repscope.core.optional.require`).
    """


#: hints that name a Python function, and what a command-line user runs instead
#: (:func:`for_cli` swaps them in the messages the ``repscope`` command prints)
#: how an unknown measure's message ends in the Python API
LIST_MEASURES_HINT = "(repscope.list_measures() lists all)"

CLI_HINTS: dict[str, str] = {
    LIST_MEASURES_HINT: "(run `repscope measures` to list them)",
}


def for_cli(message: str) -> str:
    """``message`` with its Python-API hints replaced by the matching ``repscope`` commands."""
    for python, cli in CLI_HINTS.items():
        message = message.replace(python, cli)
    return message


class RepscopeWarning(UserWarning):
    """Base class of repscope warnings."""


class DegeneracyWarning(RepscopeWarning):
    """The measure is defined but degenerate in this regime (e.g. d >= n for CCA)."""


class MemoryBudgetError(RepscopeError):
    """A measure cannot run within the memory budget (raised before allocating).

    The message names the measure, the memory its paths need at this size, the
    budget and the largest n the budget allows (:mod:`repscope.core.memory`).
    """
