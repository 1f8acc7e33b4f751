"""Training interventions for the group-separation tests (ReSi tests 3–5).

A model's training data variant (``ModelSpec.data``) may name an intervention
besides the plain variants of :data:`repscope.zoo.population.DATA_VARIANTS`:

``rand<P>``  label randomisation: ``P`` % of the training labels are replaced by a
             class drawn uniformly at random (fixed seed: every seed of the model
             sees the same labels), e.g. ``rand50``;
``short<P>`` shortcut: a bright 3 × 3 marker in the top rows of every training
             image, at a column that encodes the label with probability ``P`` %
             and a random class's column otherwise (``short0``: the marker is
             present but says nothing), e.g. ``short100``;
``aug<S>``   augmentation of strength ``S`` (1, 2, …): every training batch gets
             Gaussian pixel noise of standard deviation ``0.2 · S`` and a random
             shift of up to ``S`` pixels in each direction.

Models are always evaluated, and compared, on the clean test images.  The
manifest records the intervention (:func:`describe`).  The plain variants
keep their names and behaviour, so cached models stay valid.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError

__all__ = ["INTERVENTIONS", "augment_batch", "describe", "parse_intervention",
           "randomise_labels", "shortcut_images", "variant_name"]

#: prefix → (kind, what the level means)
INTERVENTIONS: dict[str, tuple[str, str]] = {
    "rand": ("label_randomisation", "percentage of training labels replaced at random"),
    "short": ("shortcut", "percentage of training images whose marker encodes the label"),
    "aug": ("augmentation", "strength: noise s.d. 0.2·S and shifts of up to S pixels"),
}
_PATTERN = re.compile(r"^(rand|short|aug)(\d{1,3})$")
#: fixed seeds: the same corrupted labels / markers for every seed of a model
_LABEL_SEED, _MARKER_SEED = 3141, 2718


def parse_intervention(data: str) -> tuple[str, int] | None:
    """``(prefix, level)`` of an intervention variant, ``None`` for anything else."""
    m = _PATTERN.match(data)
    if m is None:
        return None
    prefix, level = m.group(1), int(m.group(2))
    if prefix in ("rand", "short") and level > 100:
        raise InvalidParameterError(f"{data!r}: a percentage must be at most 100")
    if prefix == "aug" and level == 0:
        raise InvalidParameterError(f"{data!r}: augmentation strength must be ≥ 1 (the "
                                    "plain 'full' variant has none)")
    return prefix, level


def variant_name(prefix: str, level: int) -> str:
    """The data variant of an intervention, e.g. ``variant_name("rand", 50) == "rand50"``."""
    if prefix not in INTERVENTIONS:
        raise InvalidParameterError(f"unknown intervention {prefix!r}; choose one of "
                                    f"{', '.join(INTERVENTIONS)}")
    name = f"{prefix}{int(level)}"
    parse_intervention(name)
    return name


def describe(data: str) -> dict[str, Any] | None:
    """The manifest's record of the intervention of variant ``data`` (``None``: none)."""
    parsed = parse_intervention(data)
    if parsed is None:
        return None
    kind, meaning = INTERVENTIONS[parsed[0]]
    return {"kind": kind, "level": parsed[1], "level_means": meaning,
            "evaluated_on": "clean test images"}


def randomise_labels(labels: np.ndarray, data: str, n_classes: int = 10) -> np.ndarray:
    """``labels`` with the variant's fraction replaced by uniformly random classes."""
    parsed = parse_intervention(data)
    if parsed is None or parsed[0] != "rand":
        return labels
    rng = np.random.default_rng(_LABEL_SEED)
    pick = rng.random(labels.shape[0]) < parsed[1] / 100
    new = rng.integers(0, n_classes, size=labels.shape[0])
    out = labels.copy()
    out[pick] = new[pick]
    return out


def _marker_column(c: np.ndarray) -> np.ndarray:
    return 3 + 2 * c  # classes 0 … 9 → columns 3 … 21 (a 3-wide marker ends by column 23)


def shortcut_images(images: np.ndarray, labels: np.ndarray, data: str,
                    n_classes: int = 10) -> np.ndarray:
    """Training images with the variant's label-encoding marker (unchanged otherwise)."""
    parsed = parse_intervention(data)
    if parsed is None or parsed[0] != "short":
        return images
    rng = np.random.default_rng(_MARKER_SEED)
    honest = rng.random(labels.shape[0]) < parsed[1] / 100
    where = np.where(honest, labels, rng.integers(0, n_classes, size=labels.shape[0]))
    out = np.array(images, dtype=np.float32, copy=True).reshape(-1, 28, 28)
    cols = _marker_column(where.astype(np.int64))
    rows = np.arange(out.shape[0])
    for off in range(3):
        out[rows, 1:4, cols + off] = 1.0
    return out.reshape(np.shape(images))


def augment_batch(x: Any, data: str, generator: Any) -> Any:
    """A training batch (torch, ``(n, 28, 28)``) augmented for an ``aug<S>`` variant; the
    batch itself for every other variant (no random numbers drawn)."""
    parsed = parse_intervention(data)
    if parsed is None or parsed[0] != "aug":
        return x
    import torch

    s = parsed[1]
    dx, dy = (int(v) for v in torch.randint(-s, s + 1, (2,), generator=generator))
    x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    return x + 0.2 * s * torch.randn(x.shape, generator=generator)
