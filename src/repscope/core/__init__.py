"""Foundations every other layer uses; depends on nothing else in repscope.

=======================  =========================================================
:mod:`.errors`           the exception and warning classes (all ``RepscopeError``)
:mod:`.arrays`           NumPy/torch through the array API; float64 promotion
:mod:`.linalg`           Gram, Cholesky, eigen- and singular-value helpers
:mod:`.validation`       checking and promoting an (n, d) representation once
:mod:`.progress`         progress bars (rich) that cost nothing when off
:mod:`.optional`         importing optional dependencies, or naming their extra
:mod:`.threads`          CPU counts and one-threaded BLAS regions
:mod:`.warning_capture`  per-thread capture of the warnings a measure raises
:mod:`.version`          ``__version__``
=======================  =========================================================
"""
