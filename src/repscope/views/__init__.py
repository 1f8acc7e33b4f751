"""What result tables look like to a reader: marks, labels, matrices and figures.

Shared by the HTML report (:mod:`repscope.report`) and the notebook API
(:meth:`repscope.ResultTable.heatmap`): :mod:`~repscope.views.marks` (what a
cell may claim), :mod:`~repscope.views.analysis` (best matches, model ×
model, agreement), :mod:`~repscope.views.measure_notes` (what a measure
ignores and sees, its colour scale), :mod:`~repscope.views.colormaps` and
:mod:`~repscope.views.figures` (matplotlib, object-oriented).
"""

from repscope.views.figures import heatmap, layer_heatmap, model_heatmap

__all__ = ["heatmap", "layer_heatmap", "model_heatmap"]
