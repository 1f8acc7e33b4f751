"""Built-in measures; importing this package registers them all."""

from . import cca, cka, procrustes  # noqa: F401
