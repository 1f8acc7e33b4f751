"""Memory budgets: ``memory="4GiB"`` on measures, ``compare`` and ``grid``.

A budget is a number of bytes.  :func:`parse_memory` reads it from an integer
(bytes) or a string with a unit (``"4GiB"``, ``"512MiB"``, ``"2GB"``, ``"1.5G"``;
``K``/``M``/``G``/``T`` alone mean powers of 1024).  Without one, measures use
:func:`default_budget`: half of the memory the operating system reports as
available when the budget is first needed (``MemAvailable`` in
``/proc/meminfo``; 4 GiB where that cannot be read), at least 256 MiB.
"""

from __future__ import annotations

import os
import re
from typing import Any

from repscope.core.errors import InvalidParameterError

__all__ = ["available_memory", "default_budget", "format_bytes", "parse_memory"]

_UNITS = {
    "": 1, "b": 1,
    "k": 2**10, "kib": 2**10, "kb": 10**3,
    "m": 2**20, "mib": 2**20, "mb": 10**6,
    "g": 2**30, "gib": 2**30, "gb": 10**9,
    "t": 2**40, "tib": 2**40, "tb": 10**12,
}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
#: fraction of the available memory a default budget takes
DEFAULT_FRACTION = 0.5
#: smallest default budget
MIN_DEFAULT = 256 * 2**20


def parse_memory(value: Any) -> int:
    """Bytes of a budget given as an integer or a string with a unit; ``None``: the default."""
    if value is None:
        return default_budget()
    if isinstance(value, bool):
        raise InvalidParameterError(f"memory must be a size such as '4GiB', got {value!r}")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise InvalidParameterError(f"memory must be positive, got {value!r}")
        return int(value)
    if isinstance(value, str):
        m = _PATTERN.match(value)
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise InvalidParameterError(
                f"memory must be a size such as '4GiB', '512MiB', '8GB' or a number of bytes, "
                f"got {value!r}"
            )
        out = int(float(m.group(1)) * _UNITS[unit])
        if out <= 0:
            raise InvalidParameterError(f"memory must be positive, got {value!r}")
        return out
    raise InvalidParameterError(f"memory must be a size such as '4GiB', got {value!r}")


def available_memory() -> int | None:
    """Bytes the operating system reports as available (``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def default_budget() -> int:
    """Half the available memory (4 GiB when unknown), at least 256 MiB."""
    avail = available_memory()
    if avail is None:
        return 4 * 2**30
    return max(MIN_DEFAULT, int(avail * DEFAULT_FRACTION))


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units with three significant digits (``"3.73 GiB"``)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"
