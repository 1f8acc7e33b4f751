"""Register the PLS-SVD similarity m_SVD of Nielsen et al. (2025) as a measure.

The implementation lives with the identifiability code
(:class:`repscope.identifiability.dissimilarity.MeanSVD`); this module only
adds it to the registry so it is available as ``repscope.measure("m_svd")``.
"""

from __future__ import annotations

from ..identifiability.dissimilarity import MeanSVD
from ..registry import register

register(MeanSVD)

__all__ = ["MeanSVD"]
