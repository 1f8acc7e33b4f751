"""Old import paths (repscope 0.1 layout), kept for one release with a DeprecationWarning.

One mechanism serves them all: a meta-path finder that answers for the old
module names only.  ``import repscope.stats``, ``from repscope.allpairs import
grid`` and ``repscope.results`` (attribute access on the package) resolve to
the module's new home and warn once, naming it.  A module that moved whole is
the new module itself (so monkeypatching through the old name still reaches
the code); a module that was split into several is a read-only view whose
attributes are looked up in the new modules in turn.

:data:`MOVED` is the table of old and new paths; ``docs/design.md`` lists it
too.  No file remains at an old path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
import warnings
from typing import Any

#: old module -> the module(s) that now hold its contents (looked up in this order)
MOVED: dict[str, tuple[str, ...]] = {
    "repscope.errors": ("repscope.core.errors",),
    "repscope.validation": ("repscope.core.validation",),
    "repscope.metadata": ("repscope.measures.metadata",),
    "repscope.registry": ("repscope.measures.registry",),
    "repscope.moments": ("repscope.measures.moments",),
    "repscope.measures._moment": ("repscope.measures.moment_measure",),
    "repscope.docs_gen": ("repscope.measures.catalogue",),
    "repscope.stats": (
        "repscope.inference",
        "repscope.inference.options",
        "repscope.inference.resampling",
        "repscope.inference.permutation",
        "repscope.inference.bootstrap",
        "repscope.inference.heldout",
        "repscope.inference.heldout_fits",
        "repscope.core.warning_capture",
        "repscope.core.progress",
    ),
    "repscope.invariance_profile": ("repscope.inference.profile",),
    "repscope.comparison": ("repscope.engine.compare", "repscope.engine.table"),
    "repscope.allpairs": (
        "repscope.engine.grid",
        "repscope.engine.tasks",
        "repscope.engine.cross_moments",
        "repscope.engine.local",
    ),
    "repscope.distributed": ("repscope.engine.distributed",),
    "repscope.streaming": ("repscope.engine.streaming",),
    "repscope.results": ("repscope.storage.results_db",),
    "repscope.store": ("repscope.storage.activation_store", "repscope.storage.entry_writer"),
    "repscope.probes": ("repscope.probing.probes",),
    "repscope.stitching": ("repscope.probing.stitching",),
    "repscope.models": ("repscope.extract.pretrained",),
}

_PACKAGE_INIT = os.path.join(os.path.dirname(__file__), "__init__.py")

#: short names of the old modules, as attributes of the ``repscope`` package
OLD_ATTRIBUTES: frozenset[str] = frozenset(
    name.split(".")[1] for name in MOVED if name.count(".") == 1
)


def _stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the code doing the import.

    Frames of the import machinery and of this module are skipped, so the
    warning names the user's file and line (and the default warning filters,
    which show a DeprecationWarning only when it is attributed to ``__main__``,
    treat it as the user's).
    """
    frame = sys._getframe(1)  # the caller of this function: _warn, stack level 1
    level = 1
    while frame is not None:
        name = frame.f_code.co_filename
        internal = "importlib" in name and "_bootstrap" in name  # warnings skips these itself
        if not internal:
            ours = name in (__file__, _PACKAGE_INIT)  # this module, repscope.__getattr__
            if not ours and "importlib" not in name.replace("\\", "/").split("/")[-2:-1]:
                return level
            level += 1
        frame = frame.f_back
    return level


def _warn(old: str, new: tuple[str, ...]) -> None:
    where = new[0] if len(new) == 1 else ", ".join(new[:-1]) + " and " + new[-1]
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; import from {where} "
        "instead (see docs/design.md)",
        DeprecationWarning,
        stacklevel=_stacklevel(),
    )


class _SplitModule(types.ModuleType):
    """A read-only view of a module that was split: attributes come from the new modules."""

    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name, f"Deprecated: moved to {', '.join(targets)}.")
        self.__targets = targets

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(
            f"module {self.__name__!r} has no attribute {attr!r} (it moved to one of "
            f"{', '.join(self.__targets)})"
        )

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for target in self.__targets:
            module = importlib.import_module(target)
            names.update(getattr(module, "__all__", None) or
                         (n for n in vars(module) if not n.startswith("_")))
        return sorted(names)


class LegacyFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module names of :data:`MOVED` (and nothing else)."""

    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        targets = MOVED[spec.name]
        _warn(spec.name, targets)
        if len(targets) == 1:  # moved whole: the old name is the new module
            return importlib.import_module(targets[0])
        return _SplitModule(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module object is complete."""


def install() -> None:
    """Add the finder to ``sys.meta_path`` once."""
    if not any(isinstance(f, LegacyFinder) for f in sys.meta_path):
        sys.meta_path.append(LegacyFinder())
