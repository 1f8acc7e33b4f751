"""One run per output folder: a lock file held for the whole run.

``repscope run`` (and :func:`repscope.study.run_studies`) holds
``OUT/.repscope.lock`` (an OS file lock through :mod:`filelock`, released by
the operating system if the process dies, even by ``kill -9``) from before the
first extraction until the report is written.  A second run on the same folder
does not wait: it stops at once with :class:`FolderInUseError`, naming the
process that holds the folder (recorded in ``OUT/.repscope.owner.json`` by the
holder).  Runs on different folders are independent.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from repscope.core.errors import RepscopeError

__all__ = ["FolderInUseError", "FolderLock", "LOCK_NAME", "OWNER_NAME"]

LOCK_NAME = ".repscope.lock"
OWNER_NAME = ".repscope.owner.json"


class FolderInUseError(RepscopeError):
    """Another run holds the output folder."""


def _owner_text(folder: Path) -> str:
    try:
        owner = json.loads((folder / OWNER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "another process"
    if not isinstance(owner, dict):
        return "another process"
    parts = [f"process {owner.get('pid', '?')}"]
    if owner.get("host"):
        parts.append(f"on {owner['host']}")
    if owner.get("started"):
        parts.append(f"since {owner['started']}")
    if owner.get("command"):
        parts.append(f"({owner['command']})")
    return " ".join(parts)


class FolderLock:
    """Exclusive use of an output folder; a context manager.

    Parameters
    ----------
    folder : the output folder (created if missing).

    Raises
    ------
    FolderInUseError
        On entering, when another run (in this or another process) holds the folder.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._lock: Any = None

    def __enter__(self) -> FolderLock:
        from filelock import FileLock, Timeout

        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.folder / LOCK_NAME), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise FolderInUseError(
                f"output folder {self.folder} is in use by {_owner_text(self.folder)}; wait "
                "for that run to finish, or choose another --out folder"
            ) from None
        self._lock = lock
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "command": " ".join(os.path.basename(a) if i == 0 else a
                                     for i, a in enumerate(sys.argv))[:200]}
        with contextlib.suppress(OSError):
            (self.folder / OWNER_NAME).write_text(json.dumps(owner), encoding="utf-8")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            (self.folder / OWNER_NAME).unlink()
        self._lock.release()
        self._lock = None
