"""Colour maps of the report, as 32 sRGB stops, and the ink that reads on each colour.

The stops are sampled from matplotlib's ``viridis`` (sequential: similarities
bright, distances reversed so that "more alike" is always bright) and
``RdBu_r`` (diverging: correlations between measures); they are data, so the
HTML report needs neither matplotlib nor a colour library.  The annotation
ink is chosen per cell from the relative luminance of that cell's colour
(WCAG 2), not from where the value sits in the data.
"""

from __future__ import annotations

__all__ = ["COLOUR_MAPS", "ink_for", "relative_luminance"]

COLOUR_MAPS: dict[str, list[str]] = {
    "viridis": [
        "#440154", "#470d60", "#48186a", "#482374", "#472e7c", "#453882", "#424186", "#3e4a89",
        "#3a548c", "#365d8d", "#32658e", "#2e6d8e", "#2b758e", "#287d8e", "#25848e", "#228c8d",
        "#1f948c", "#1e9c89", "#20a386", "#25ab82", "#2eb37c", "#3aba76", "#48c16e", "#58c765",
        "#6ccd5a", "#7fd34e", "#93d741", "#a8db34", "#c0df25", "#d5e21a", "#eae51a", "#fde725",
    ],
    "RdBu_r": [
        "#053061", "#0e4179", "#175290", "#1f63a8", "#2b73b3", "#3681ba", "#408fc1", "#569fc9",
        "#71b0d3", "#8ac0db", "#a0cce2", "#b3d6e8", "#cae1ee", "#d8e9f1", "#e4eef4", "#f0f4f6",
        "#f8f2ef", "#fae9df", "#fce0d0", "#fcd5bf", "#f9c2a7", "#f6b191", "#f19e7d", "#e8896c",
        "#dd7059", "#d35a4a", "#c84440", "#bd2d35", "#ae172a", "#960f27", "#7f0823", "#67001f",
    ],
}


def _channel(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(rgb: tuple[float, float, float] | str) -> float:
    """WCAG relative luminance of an sRGB colour (``"#rrggbb"`` or floats in [0, 1])."""
    if isinstance(rgb, str):
        h = rgb.lstrip("#")
        rgb = (int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255)
    r, g, b = (_channel(float(c)) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ink_for(rgb: tuple[float, float, float] | str) -> str:
    """``"black"`` or ``"white"``, whichever has the higher contrast ratio on ``rgb``."""
    lum = relative_luminance(rgb)
    on_black = (lum + 0.05) / 0.05
    on_white = 1.05 / (lum + 0.05)
    return "black" if on_black >= on_white else "white"
