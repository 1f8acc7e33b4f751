"""The ``repscope`` command-line interface."""
