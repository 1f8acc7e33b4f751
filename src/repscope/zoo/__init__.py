"""Small offline model zoos used by the demo, the tests and the examples.

:data:`FACTORIES` lists the factories of this zoo that a study file may name
without being trusted (``repscope run`` loads them without ``--trust``): each
is part of repscope and builds a model from plain keyword arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["FACTORIES"]

#: ``"module:function"`` → what it builds; the factories study files may use untrusted
FACTORIES: Mapping[str, str] = MappingProxyType({
    "repscope.zoo.digits:pretrained": "an MLP trained on scikit-learn's bundled digits "
    "(repscope.zoo.digits.pretrained)",
    "repscope.zoo.fashion:pretrained": "an MLP, CNN, MLP-Mixer or autoencoder trained on "
    "Fashion-MNIST and cached in the zoo folder (repscope.zoo.fashion.pretrained)",
})
