"""The version of repscope (one place; the package metadata reads the same)."""

__version__ = "0.1.0"
