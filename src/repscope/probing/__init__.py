"""Comparisons that train a small model on a representation.

================  ==================================================================
:mod:`.probes`    linear probes per layer and how well their predictions agree
:mod:`.stitching` model stitching: a learned map from one network's layer into another's
================  ==================================================================
"""
