"""Built-in measures; importing this package registers them all.

Every public module in this package (name not starting with ``_``, other than
``base``) defines measures and registers them with ``@register`` on import.
"""

from __future__ import annotations

import importlib
import pkgutil

for _mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _mod.name.startswith("_") and _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")
