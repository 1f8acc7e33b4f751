"""The zoo's image networks: MLP, CNN and MLP-Mixer, with named layers to compare.

Every network maps ``(n, 28, 28)`` images (or ``(n, 1, 28, 28)``) to
``n_out`` outputs and lists its comparable layers in ``layer_names`` — modules
whose outputs :func:`repscope.extract.extract_torch` records by name.  The
layers are at matching *relative depths* across families (the last hidden
representation is always ``"embedding"``, the output ``"logits"``), so
findings can be stated per relative depth.

* :class:`MLP` — ``flatten → [Linear → ReLU] × depth → Linear``.
* :class:`CNN` — ``[Conv 3×3 → ReLU → MaxPool 2] × 2 → Linear → ReLU → Linear``.
* :class:`Mixer` — MLP-Mixer (Tolstikhin et al. 2021) on 7 × 7 patches: token- and
  channel-mixing MLPs with layer norms and residuals.
* :class:`AutoEncoder` — an :class:`MLP` encoder trained to reconstruct its input through
  a linear decoder (the unsupervised objective); its comparable layers are the encoder's.

``forward_from(layer, h)`` runs the rest of a network from a layer's output
(the sensitivity test of :mod:`repscope.grounding` edits a layer's
activations and measures what the network then does).  Parameter counts and
multiply–accumulate counts per input are exact
(:func:`macs_per_input`), for the training FLOPs of the manifest.
"""

from __future__ import annotations

from typing import Any

from repscope.core.optional import require

__all__ = ["ARCHITECTURES", "build_network", "macs_per_input"]


def _torch() -> Any:
    return require("torch", purpose="the zoo's networks")


nn = _torch().nn


class MLP(nn.Module):  # type: ignore[misc]
    """``flatten → [Linear(width) → ReLU] × depth → Linear(n_out)``; layers ``hidden1`` …,
    the last hidden layer named ``embedding``."""

    def __init__(self, width: int, depth: int = 3, n_out: int = 10, n_in: int = 784) -> None:
        super().__init__()
        self.depth = int(depth)
        prev = n_in
        self.layer_names: list[str] = []
        for i in range(1, self.depth + 1):
            name = "embedding" if i == self.depth else f"hidden{i}"
            setattr(self, name, nn.Sequential(nn.Linear(prev, width), nn.ReLU()))
            self.layer_names.append(name)
            prev = width
        self.logits = nn.Linear(prev, n_out)
        self.layer_names.append("logits")

    def features(self, x: Any) -> Any:
        x = x.reshape(x.shape[0], -1)
        for name in self.layer_names[:-1]:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: Any) -> Any:
        return self.logits(self.features(x))

    def forward_from(self, layer: str, h: Any) -> Any:
        """Logits from the output ``h`` of ``layer`` (the rest of the network)."""
        names = self.layer_names
        for name in names[names.index(layer) + 1:]:
            h = getattr(self, name)(h)
        return h


class CNN(nn.Module):  # type: ignore[misc]
    """Two conv blocks (``width`` and ``2·width`` channels), a dense ``embedding`` of
    ``4·width`` units and ``logits``."""

    def __init__(self, width: int, depth: int = 2, n_out: int = 10, n_in: int = 784) -> None:
        super().__init__()
        del depth, n_in  # fixed by design; accepted for a uniform factory signature
        self.conv1 = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
                                   nn.MaxPool2d(2))
        self.embedding = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 49, 4 * width),
                                       nn.ReLU())
        self.logits = nn.Linear(4 * width, n_out)
        self.layer_names = ["conv1", "conv2", "embedding", "logits"]

    def features(self, x: Any) -> Any:
        x = x.reshape(x.shape[0], 1, 28, 28)
        return self.embedding(self.conv2(self.conv1(x)))

    def forward(self, x: Any) -> Any:
        return self.logits(self.features(x))

    def forward_from(self, layer: str, h: Any) -> Any:
        """Logits from the output ``h`` of ``layer``; flattened conv outputs are reshaped
        back to their feature maps."""
        shapes = {"conv1": (-1, self.conv1[0].out_channels, 14, 14),
                  "conv2": (-1, self.conv2[0].out_channels, 7, 7)}
        if layer in shapes:
            h = h.reshape(shapes[layer])
        names = self.layer_names
        for name in names[names.index(layer) + 1:]:
            h = getattr(self, name)(h)
        return h


class _MixerBlock(nn.Module):  # type: ignore[misc]
    def __init__(self, tokens: int, width: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.token_mix = nn.Sequential(nn.Linear(tokens, 2 * tokens), nn.GELU(),
                                       nn.Linear(2 * tokens, tokens))
        self.norm2 = nn.LayerNorm(width)
        self.channel_mix = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(),
                                         nn.Linear(2 * width, width))

    def forward(self, x: Any) -> Any:  # x: (n, tokens, width)
        x = x + self.token_mix(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mix(self.norm2(x))


class _MeanTokens(nn.Module):  # type: ignore[misc]
    def forward(self, x: Any) -> Any:
        return x.mean(1)


class Mixer(nn.Module):  # type: ignore[misc]
    """MLP-Mixer on 16 patches of 7 × 7 pixels: ``patches`` (linear embedding),
    ``block1`` … ``block<depth>``, the token-averaged ``embedding`` and ``logits``."""

    def __init__(self, width: int, depth: int = 2, n_out: int = 10, n_in: int = 784) -> None:
        super().__init__()
        del n_in
        self.patches = nn.Linear(49, width)
        self.layer_names = ["patches"]
        for i in range(1, int(depth) + 1):
            setattr(self, f"block{i}", _MixerBlock(16, width))
            self.layer_names.append(f"block{i}")
        self.n_blocks = int(depth)
        self.embedding = nn.Sequential(nn.LayerNorm(width), _MeanTokens())
        self.logits = nn.Linear(width, n_out)
        self.layer_names += ["embedding", "logits"]

    def features(self, x: Any) -> Any:
        x = x.reshape(x.shape[0], 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(x.shape[0], 16, 49)
        x = self.patches(x)
        for i in range(1, self.n_blocks + 1):
            x = getattr(self, f"block{i}")(x)
        return self.embedding(x)

    def forward(self, x: Any) -> Any:
        return self.logits(self.features(x))

    def forward_from(self, layer: str, h: Any) -> Any:
        """Logits from the output ``h`` of ``layer`` (token outputs may come flattened)."""
        if layer != "embedding" and layer != "logits":
            h = h.reshape(h.shape[0], 16, -1)
        names = self.layer_names
        for name in names[names.index(layer) + 1:]:
            h = getattr(self, name)(h)
        return h


class AutoEncoder(nn.Module):  # type: ignore[misc]
    """An :class:`MLP` encoder whose ``logits`` is a ``n_out``-unit code; ``decoder``
    reconstructs the 784 pixels linearly.  ``forward`` returns the code (the comparable
    output), :meth:`reconstruct` the pixels."""

    def __init__(self, width: int, depth: int = 3, n_out: int = 10, n_in: int = 784) -> None:
        super().__init__()
        self.encoder = MLP(width, depth, n_out, n_in)
        self.decoder = nn.Linear(n_out, n_in)
        self.layer_names = [f"encoder.{n}" for n in self.encoder.layer_names]

    def forward(self, x: Any) -> Any:
        return self.encoder(x)

    def forward_from(self, layer: str, h: Any) -> Any:
        """The code from the output ``h`` of encoder layer ``layer``."""
        return self.encoder.forward_from(layer.removeprefix("encoder."), h)

    def reconstruct(self, x: Any) -> Any:
        return self.decoder(self.encoder(x))


ARCHITECTURES: dict[str, type] = {"mlp": MLP, "cnn": CNN, "mixer": Mixer,
                                  "autoencoder": AutoEncoder}


def build_network(family: str, width: int, depth: int, n_out: int = 10) -> Any:
    """A freshly initialised network of ``family`` (one of :data:`ARCHITECTURES`)."""
    try:
        cls = ARCHITECTURES[family]
    except KeyError:
        from repscope.core.errors import InvalidParameterError

        raise InvalidParameterError(f"unknown architecture {family!r}; choose one of "
                                    f"{', '.join(ARCHITECTURES)}") from None
    return cls(int(width), int(depth), int(n_out))


def macs_per_input(model: Any) -> int:
    """Multiply–accumulates of one forward pass on one 28 × 28 input (Linear and Conv2d
    layers; element-wise operations are not counted)."""
    torch = _torch()
    total = 0

    def hook(mod: Any, inp: Any, out: Any) -> None:
        nonlocal total
        if isinstance(mod, torch.nn.Linear):
            total += int(out.numel() // out.shape[-1]) * mod.in_features * mod.out_features
        elif isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += int(out.numel()) * k

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    try:
        with torch.no_grad():
            if isinstance(model, AutoEncoder):
                model.reconstruct(torch.zeros(1, 28, 28))
            else:
                model(torch.zeros(1, 28, 28))
    finally:
        for h in handles:
            h.remove()
    return total
