"""Which code a study file may run: an allowlist, granted only by the caller.

A study file is data except for ``factory = "module:function"``: loading a
model from it imports ``module`` and calls ``function``, which runs code like
a script.  So only these factories load without asking:

* the factories of :data:`repscope.zoo.FACTORIES` (part of repscope);
* the values of the ``repscope.factories`` entry points of installed packages
  (a package declares ``[project.entry-points."repscope.factories"]
  mynet = "mypkg.models:build"``; installing it is the act of trust).

Any other factory, a local ``.py`` module included, needs the caller's trust:
``repscope run --trust MODULE`` (repeatable) or ``trust=["MODULE"]`` in
:func:`repscope.study.run_study`.  ``MODULE`` trusts that module and its
submodules (``mypkg`` trusts ``mypkg.models:build``); ``module:function``
trusts one factory.  Nothing inside a study file can grant trust — a file
that listed its own trusted modules would authorise itself — and the check
is an allowlist, because a denylist of dangerous names is bypassed by
``importlib``, ``runpy``, ``pickle``, ``torch.load`` and the like.  The check
runs before any module is imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

from repscope.study.spec import StudySpec, StudySpecError

__all__ = ["ENTRY_POINT_GROUP", "Trust", "UntrustedCodeError", "registered_factories"]

#: entry-point group through which installed packages register study-file factories
ENTRY_POINT_GROUP = "repscope.factories"

_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class UntrustedCodeError(StudySpecError):
    """A study file names a factory that nobody trusted; nothing was imported or run."""


def registered_factories() -> frozenset[str]:
    """Factories that load without trust: repscope's zoo and installed entry points.

    Reading the entry points reads package metadata only; nothing is imported.
    """
    from repscope.zoo import FACTORIES

    found = set(FACTORIES)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.add(ep.value.replace(" ", ""))
    return frozenset(found)


@dataclass(frozen=True)
class Trust:
    """The modules and factories a caller trusts beyond the registered ones.

    Parameters
    ----------
    trusted : module names (``"mypkg"``, trusting its submodules too) or single
        factories (``"mypkg.models:build"``).
    """

    trusted: tuple[str, ...] = ()

    @classmethod
    def of(cls, trust: Trust | str | Iterable[str] | None) -> Trust:
        """Normalise ``trust=`` (``None``, a name, names or a :class:`Trust`)."""
        if trust is None:
            return cls()
        if isinstance(trust, Trust):
            return trust
        names = [trust] if isinstance(trust, str) else list(trust)
        for name in names:
            if not isinstance(name, str) or not (_MODULE.match(name) or _FACTORY.match(name)):
                raise StudySpecError(
                    f"trust entries are module names (mypkg, mypkg.models) or factories "
                    f"(mypkg.models:build); got {name!r}"
                )
        return cls(tuple(dict.fromkeys(names)))

    def allows(self, factory: str) -> bool:
        """Whether ``factory`` (``"module:function"``) may be imported and called."""
        if factory in registered_factories():
            return True
        module = factory.partition(":")[0]
        for t in self.trusted:
            if t == factory or (":" not in t and (module == t or module.startswith(t + "."))):
                return True
        return False

    def require(self, factory: str, model: str) -> None:
        """Raise :class:`UntrustedCodeError` unless ``factory`` is allowed (imports nothing)."""
        if self.allows(factory):
            return
        module = factory.partition(":")[0]
        known = ", ".join(sorted(registered_factories()))
        raise UntrustedCodeError(
            f"model {model!r}: factory {factory!r} is not trusted, so it was not imported or run. "
            f"A factory runs code like a script; without --trust a study file may only name "
            f"the registered factories ({known}) or those of installed packages' "
            f"{ENTRY_POINT_GROUP!r} entry points. If you wrote or reviewed {module!r}, run "
            f"again with --trust {module} (Python: run_study(..., trust=[{module!r}]))"
        )

    def check(self, specs: Iterable[StudySpec]) -> None:
        """Check every factory of every study before anything is imported or run."""
        for spec in specs:
            for m in spec.models:
                if m.kind == "torch":
                    if not isinstance(m.factory, str) or not _FACTORY.match(m.factory):
                        raise StudySpecError(
                            f"model {m.name!r}: factory must be \"package.module:function\", "
                            f"got {m.factory!r}"
                        )
                    self.require(m.factory, m.name)
