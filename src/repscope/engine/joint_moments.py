"""Joint second-moment statistics of several representations, accumulated chunk by chunk.

:class:`JointMoments` is the accumulator behind :mod:`repscope.engine.streaming`
(where the exactness, merging and precision rules are written out): one mean
vector and one centred co-moment matrix of the concatenated features, updated
by one symmetric rank-c product per chunk and merged with the pairwise update
of Chan, Golub & LeVeque.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repscope.core.arrays import Array, is_torch
from repscope.core.errors import InputShapeError, InputValueError, InvalidParameterError
from repscope.core.linalg import MIXED_BLOCK, is_low_precision, mixed_cross
from repscope.measures.moment_measure import MomentMeasure
from repscope.measures.moments import SecondMoments
from repscope.measures.registry import measure as make

PRECISIONS = ("auto", "float64", "mixed")


# ============================================================ joint statistics
@dataclass
class JointMoments:
    """Float64 sufficient statistics of k representations of the same samples.

    Attributes
    ----------
    widths : tuple of int
        Feature widths d₁ … d_k.
    n : int
        Samples accumulated.
    mean : array (D,)
        Means of the concatenated features (D = Σ dᵢ).
    s : array (D, D)
        Centred co-moment sums ``Σₜ (zₜ − μ)(zₜ − μ)ᵀ`` of the concatenated
        features (symmetric).
    precision : {"float64", "mixed"}
        Arithmetic of the chunk products (see the module docstring).
    """

    widths: tuple[int, ...]
    n: int
    mean: Array
    s: Array
    precision: str = "float64"

    # ------------------------------------------------------------ creation
    @classmethod
    def empty(cls, widths: Sequence[int], like: Any = None) -> JointMoments:
        """Zero statistics for representations of the given widths (NumPy unless ``like``)."""
        widths = tuple(int(w) for w in widths)
        if not widths or any(w < 1 for w in widths):
            raise InputShapeError(f"widths must be positive integers, got {widths}")
        total = sum(widths)
        if like is not None and is_torch(like):
            import torch

            kw = {"dtype": torch.float64, "device": like.device}
            return cls(widths, 0, torch.zeros(total, **kw), torch.zeros(total, total, **kw))
        return cls(widths, 0, np.zeros(total), np.zeros((total, total)))

    @classmethod
    def from_arrays(cls, *xs: Any, precision: str = "float64") -> JointMoments:
        """Statistics of in-memory representations (one chunk)."""
        if not xs:
            raise InputShapeError("from_arrays needs at least one representation")
        chunk = [_check_chunk(x, f"representation {i}") for i, x in enumerate(xs)]
        jm = cls.empty([int(c.shape[1]) for c in chunk], like=chunk[0])
        return jm.update(*chunk, precision=precision)

    # ------------------------------------------------------------ updates
    @property
    def k(self) -> int:
        """Number of representations."""
        return len(self.widths)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Column offset of each representation in the concatenated features."""
        out, acc = [], 0
        for w in self.widths:
            out.append(acc)
            acc += w
        return tuple(out)

    def update(
        self, *chunks: Any, precision: str = "float64", block: int = MIXED_BLOCK,
        workspace: dict[str, Any] | None = None,
    ) -> JointMoments:
        """Add one chunk of rows (one array per representation) in place; returns ``self``.

        ``precision`` is ``"float64"`` or ``"mixed"`` (float32 GEMMs; only for
        chunks that are all float32 or lower precision, else float64 is used);
        ``block`` is the rows per float32 GEMM of the mixed mode; ``workspace``
        (any dict kept across calls) lets consecutive updates reuse one buffer
        for the assembled chunk instead of allocating (and page-faulting) it anew.
        """
        if len(chunks) != self.k:
            raise InputShapeError(
                f"expected one chunk per representation ({self.k}), got {len(chunks)}"
            )
        chunk = [_check_chunk(c, f"representation {i}") for i, c in enumerate(chunks)]
        rows = {int(c.shape[0]) for c in chunk}
        if len(rows) != 1:
            raise InputShapeError(
                f"chunks of one batch must have the same number of rows, got {sorted(rows)}"
            )
        for i, (c, w) in enumerate(zip(chunk, self.widths)):
            if int(c.shape[1]) != w:
                raise InputShapeError(
                    f"representation {i}: chunk width {int(c.shape[1])} != accumulated width {w}"
                )
        mode = _resolve_precision(precision, chunk)
        c_n, c_mean, c_s = _chunk_statistics(chunk, mode, self.s, block, workspace)
        self._merge_in(c_n, c_mean, c_s, mode)
        return self

    def _merge_in(self, c_n: int, c_mean: Array, c_s: Array, mode: str) -> None:
        if c_n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.s = c_n, c_mean, c_s
            self.precision = mode
            return
        n = self.n + c_n
        delta = c_mean - self.mean
        w = self.n * c_n / n
        s = self.s
        s += c_s
        _rank1_update(s, delta, w)
        self.s = s
        self.mean = self.mean + delta * (c_n / n)
        self.n = n
        if mode == "mixed":
            self.precision = "mixed"

    def merge(self, other: JointMoments) -> JointMoments:
        """Statistics of the union of two disjoint sample sets (a new object; exact)."""
        if tuple(self.widths) != tuple(other.widths):
            raise InputShapeError(
                f"cannot merge statistics of widths {self.widths} and {other.widths}"
            )
        out = self.copy()
        if other.n:
            out._merge_in(other.n, other.mean, _copy(other.s), other.precision)
        return out

    def __add__(self, other: JointMoments) -> JointMoments:
        return self.merge(other)

    def copy(self) -> JointMoments:
        return JointMoments(self.widths, self.n, _copy(self.mean), _copy(self.s), self.precision)

    # ------------------------------------------------------------ views
    def _slice(self, i: int) -> slice:
        if not 0 <= i < self.k:
            raise InputShapeError(f"representation index {i} out of range [0, {self.k})")
        o = self.offsets[i]
        return slice(o, o + self.widths[i])

    def block(self, i: int, j: int) -> Array:
        """The centred co-moment block ``Sᵢⱼ`` (a copy)."""
        return _copy(self.s[self._slice(i), self._slice(j)])

    def pair(self, i: int, j: int) -> SecondMoments:
        """:class:`SecondMoments` of representations i (as X) and j (as Y)."""
        si, sj = self._slice(i), self._slice(j)
        return SecondMoments(
            n=self.n,
            mean_x=_copy(self.mean[si]),
            mean_y=_copy(self.mean[sj]),
            sxx=self.block(i, i),
            syy=self.block(j, j),
            sxy=self.block(i, j),
            precision=self.precision,
        )

    def evaluate(
        self, measures: Any, pairs: Iterable[tuple[int, int]] | None = None
    ) -> dict[tuple[int, int], dict[str, float]]:
        """Evaluate moment measures on representation pairs (default: every i < j).

        Asymmetric measures are evaluated in the order given (i as X, j as Y).
        """
        from repscope.core.arrays import to_float

        ms = _as_measures(measures)
        if pairs is None:
            pairs = [(i, j) for i in range(self.k) for j in range(i + 1, self.k)]
        out: dict[tuple[int, int], dict[str, float]] = {}
        for i, j in pairs:
            mom = self.pair(i, j)
            out[(i, j)] = {_label(m): to_float(m.from_moments(mom)) for m in ms}
        return out


def _copy(a: Array) -> Array:
    return a.clone() if is_torch(a) else np.array(a, copy=True)


def _rank1_update(s: Array, v: Array, w: float) -> None:
    """``s += w v vᵀ`` in place."""
    if is_torch(s):
        s.add_(w * (v[:, None] * v[None, :]))
    elif s.dtype == np.float64 and s.flags.c_contiguous and v.dtype == np.float64:
        from scipy.linalg import blas

        # BLAS GER on the Fortran-ordered view sᵀ, in place with no d × d temporary;
        # v vᵀ is symmetric, so adding it to sᵀ adds it to s
        blas.dger(w, v, v, a=s.T, overwrite_a=1)
    else:
        s += np.multiply.outer(w * v, v)


# ================================================================ chunk kernel
def _check_chunk(x: Any, name: str) -> Array:
    if is_torch(x):
        x = x.detach()
    elif not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if len(tuple(x.shape)) != 2:
        raise InputShapeError(f"{name}: chunks must be 2-D (rows x features), got {tuple(x.shape)}")
    if is_torch(x):
        if x.dtype.is_complex or not (x.dtype.is_floating_point or _torch_int(x)):
            raise InputValueError(f"{name}: unsupported dtype {x.dtype}")
    elif x.dtype.kind not in "iuf":
        raise InputValueError(f"{name}: unsupported dtype {x.dtype}; expected numbers")
    return x


def _torch_int(x: Any) -> bool:
    import torch

    return x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _resolve_precision(precision: str, chunk: Sequence[Array]) -> str:
    if precision not in ("float64", "mixed"):
        raise InvalidParameterError(
            f"precision must be 'float64' or 'mixed' here, got {precision!r}"
        )
    if precision == "mixed" and all(is_low_precision(c) for c in chunk):
        return "mixed"
    return "float64"


def _mean64(x: Array) -> Array:
    """Column means accumulated in float64 (no float64 copy of the chunk for NumPy)."""
    if is_torch(x):
        import torch

        return torch.mean(x, dim=0, dtype=torch.float64)
    return np.mean(x, axis=0, dtype=np.float64)


def _buffer(workspace: dict[str, Any] | None, shape: tuple[int, int], dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape``, reusing ``workspace["z"]`` when it is large enough."""
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    buf = workspace.get("z")
    rows, width = shape
    if buf is None or buf.dtype != dtype or buf.shape[1] != width or buf.shape[0] < rows:
        buf = workspace["z"] = np.empty(shape, dtype=dtype)
    return buf[:rows]


def _chunk_statistics(
    chunk: Sequence[Array], mode: str, like: Array, block: int = MIXED_BLOCK,
    workspace: dict[str, Any] | None = None,
) -> tuple[int, Array, Array]:
    """(rows, float64 mean, centred co-moment sum) of one multi-representation chunk."""
    c = int(chunk[0].shape[0])
    if c == 0:
        return 0, None, None
    means = [_mean64(x) for x in chunk]
    torch_mode = is_torch(like)
    if torch_mode:
        import torch

        dev = like.device
        means = [m.to(dev) for m in means]
        mean = torch.cat(means)
        if not bool(torch.all(torch.isfinite(mean))):
            raise InputValueError("a chunk contains NaN or Inf values")
        dt = torch.float32 if mode == "mixed" else torch.float64
        if mode == "mixed":
            shift = mean.to(torch.float32)
            z = torch.cat([x.to(dev, torch.float32) for x in chunk], dim=1) - shift
        else:
            z = torch.cat([x.to(dev, dt) for x in chunk], dim=1) - mean
    else:
        mean = np.concatenate(means)
        if not np.all(np.isfinite(mean)):
            raise InputValueError("a chunk contains NaN or Inf values")
        total = int(mean.shape[0])
        dt = np.float32 if mode == "mixed" else np.float64
        z = _buffer(workspace, (c, total), dt)
        shift = mean.astype(dt)
        o = 0
        for x in chunk:
            w = int(x.shape[1])
            np.subtract(x, shift[o : o + w], out=z[:, o : o + w], casting="unsafe")
            o += w
    if mode == "mixed":
        s = mixed_cross(z, block=block)
        e = mean - (shift.double() if torch_mode else shift.astype(np.float64))
        _rank1_update(s, e, -float(c))
    else:
        s = z.T @ z
    return c, mean, s


def _as_measures(measures: Any) -> list[Any]:
    """Configured second-moment measures from names or instances (refuses other measures)."""
    if measures is None:
        return []
    if isinstance(measures, (str, MomentMeasure)):
        measures = [measures]
    out = []
    for m in measures:
        m = make(m) if isinstance(m, str) else m
        if not isinstance(m, MomentMeasure) or not m.supports_moments:
            name = getattr(getattr(m, "info", None), "name", m)
            raise InvalidParameterError(
                f"{name} is not a function of second moments and cannot be streamed"
            )
        out.append(m)
    return out


def _label(m: Any) -> str:
    defaults = m.info.params
    extra = {k: v for k, v in m.params.items() if defaults.get(k) != v}
    if not extra:
        return m.info.name
    return m.info.name + "(" + ", ".join(f"{k}={v!r}" for k, v in sorted(extra.items())) + ")"
