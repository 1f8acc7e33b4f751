"""Dask clients for :func:`repscope.grid`: :func:`dask_client` and the active client.

Inside ``with dask_client(...)`` every :func:`repscope.grid` call runs on the
cluster (see :mod:`repscope.engine.distributed` for how work is split);
``"local"`` / ``"local:N"`` start an in-process cluster, any other address
connects to a scheduler.  The optional packages ``dask`` and ``distributed``
are imported only when a client is made.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.core.optional import require

__all__ = ["dask_client", "active_client", "current_client", "parse_address"]

_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("repscope_dask_client",
                                                              default=None)


# ------------------------------------------------------------------ clients
def import_distributed() -> Any:
    """The ``distributed`` package, or a :class:`MissingDependencyError` naming the extra."""
    return require("distributed", purpose="running on Dask")


def parse_address(address: str) -> tuple[str, int | None]:
    """``("local", n_workers)`` for ``"local"`` / ``"local:N"``, else ``("remote", address)``."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidParameterError(f"a Dask address must be a non-empty str, got {address!r}")
    address = address.strip()
    if address == "local":
        return "local", None
    if address.startswith("local:"):
        text = address[len("local:"):]
        if not text.isdigit() or int(text) < 1:
            raise InvalidParameterError(
                f"'local:N' needs a positive number of workers, got {address!r}"
            )
        return "local", int(text)
    if "://" not in address and ":" not in address:
        raise InvalidParameterError(
            f"a Dask address is 'local', 'local:N' or a scheduler address such as "
            f"'tcp://host:8786', got {address!r}"
        )
    return "remote", address


@contextlib.contextmanager
def dask_client(address: Any = "local", *, timeout: float = 30.0,
                **cluster_kwargs: Any) -> Iterator[Any]:
    """Connect to (or start) a Dask cluster and run every grid inside the block on it.

    Parameters
    ----------
    address : ``"local"`` (a :class:`distributed.LocalCluster` with one
        single-threaded worker process per core), ``"local:N"`` (N worker
        processes), a scheduler address (``"tcp://host:8786"``, ``"host:8786"``,
        ``"tls://…"``), or an existing ``distributed.Client`` (not closed at
        the end).
    timeout : seconds to wait for a remote scheduler.
    **cluster_kwargs : passed to ``LocalCluster`` (e.g. ``memory_limit``).

    Yields
    ------
    distributed.Client
        The client; :func:`active_client` returns it inside the block.

    A cluster or client started here is closed when the block ends.
    """
    distributed = import_distributed()
    client: Any
    cluster: Any = None
    own = True
    if isinstance(address, distributed.Client):
        client, own = address, False
    else:
        kind, workers = parse_address(address)
        if kind == "local":
            kw: dict[str, Any] = {"n_workers": workers, "threads_per_worker": 1,
                                  "processes": True, "dashboard_address": "127.0.0.1:0",
                                  "host": "127.0.0.1"}
            kw.update(cluster_kwargs)
            cluster = distributed.LocalCluster(**kw)
            client = distributed.Client(cluster, set_as_default=False)
        else:
            try:
                client = distributed.Client(address, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise RepscopeError(
                    f"cannot connect to the Dask scheduler at {address!r}: {exc}"
                ) from exc
    token = _ACTIVE.set(client)
    try:
        yield client
    finally:
        _ACTIVE.reset(token)
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


def active_client() -> Any:
    """The client of the innermost :func:`dask_client` block, or ``None``."""
    return _ACTIVE.get()


def current_client(required: bool = False) -> Any:
    """The active :func:`dask_client` client, else Dask's default client, else ``None``.

    With ``required=True`` a missing client raises :class:`InvalidParameterError`.
    """
    client = _ACTIVE.get()
    if client is not None:
        return client
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError) as exc:
        if required:
            raise InvalidParameterError(
                "executor='dask' needs a Dask client: pass client=..., create a "
                "distributed.Client, or run inside repscope.engine.distributed.dask_client(address)"
            ) from exc
        return None
