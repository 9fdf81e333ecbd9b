"""The l-inf probe kernels' per-term pieces (see ``_probe_kernels``), one implementation per
flavour, chosen by argument types at compile time: ``u8`` (byte queries, byte support: integer
arithmetic in byte units), ``f64u8`` (float64 queries, byte support read as ``float64(y) / 255``)
and ``f64`` (float64 throughout). Every test here evaluates exactly the terms the exact distance
is the maximum of, so pruning never changes a result.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

#: an integer limit larger than every byte distance (no limit yet)
BIG_INT = np.iinfo(np.int64).max // 4


def bounds(qk, lim, DT):  # pragma: no cover - replaced by the overloads in jitted code
    raise NotImplementedError


@overload(bounds)
def _ov_bounds(qk, lim, DT):
    """For byte support: the interval ``[lo, lo + w)`` of byte values ``y`` whose term at this pixel
    is ``< lim`` (every other ``y`` proves ``d >= lim``), and whether the pixel can prune anything."""
    if DT.dtype != types.uint8:
        return lambda qk, lim, DT: (np.uint8(0), np.uint8(0), True)  # float support: unused
    if isinstance(lim, types.Integer):
        def impl_u8(qk, lim, DT):  # |qk - y| < lim  <=>  qk - lim < y < qk + lim
            if lim > 255:
                return np.uint8(0), np.uint8(0), False
            lo = max(np.int64(qk) - lim + 1, 0)
            hi = min(np.int64(qk) + lim - 1, 255)
            w = hi - lo + 1
            if w >= 256:
                return np.uint8(0), np.uint8(0), False
            return np.uint8(lo), np.uint8(max(w, 0)), True
        return impl_u8

    def impl_f64u8(qk, lim, DT):
        # the term is |g(y)| with g(y) = qk - float64(y) / 255.0, non-increasing in y (correctly
        # rounded operations are monotone): {|g| < lim} = {g < lim} & {g > -lim} = [a, b]
        if not (lim < np.inf):
            return np.uint8(0), np.uint8(0), False
        lo_, hi_ = 0, 256  # a = first y with g(y) < lim
        while lo_ < hi_:
            mid = (lo_ + hi_) // 2
            if qk - np.float64(mid) / 255.0 < lim:
                hi_ = mid
            else:
                lo_ = mid + 1
        a = lo_
        lo_, hi_ = -1, 255  # b = last y with g(y) > -lim
        while lo_ < hi_:
            mid = (lo_ + hi_ + 1) // 2
            if qk - np.float64(mid) / 255.0 > -lim:
                lo_ = mid
            else:
                hi_ = mid - 1
        b = lo_
        w = b - a + 1
        if w >= 256:
            return np.uint8(0), np.uint8(0), False
        if w <= 0:
            return np.uint8(0), np.uint8(0), True
        return np.uint8(a), np.uint8(w), True
    return impl_f64u8


def probe_col(alive, col, qk, lo, w, lim, n):  # pragma: no cover
    raise NotImplementedError


@overload(probe_col)
def _ov_probe_col(alive, col, qk, lo, w, lim, n):
    """``alive[j] &= (term of support point j at this pixel < lim)``, vectorised over the block
    (``alive``: uint8 0/1; a bool mask compiles to a loop several times slower)."""
    if col.dtype == types.uint8:
        def impl(alive, col, qk, lo, w, lim, n):
            for jj in range(n):
                alive[jj] &= np.uint8(np.uint8(col[jj] - lo) < w)
        return impl

    def impl_f(alive, col, qk, lo, w, lim, n):
        for jj in range(n):
            alive[jj] &= np.uint8(abs(qk - col[jj]) < lim)
    return impl_f


def term_prunes(y, qk, lo, w, lim):  # pragma: no cover
    raise NotImplementedError


@overload(term_prunes)
def _ov_term_prunes(y, qk, lo, w, lim):
    """Scalar version of one probe test: does this term prove ``d >= lim``?"""
    if y == types.uint8:
        return lambda y, qk, lo, w, lim: np.uint8(y - lo) >= w
    return lambda y, qk, lo, w, lim: abs(qk - y) >= lim


def exact_below(q, row, lim, stops):  # pragma: no cover
    raise NotImplementedError


@overload(exact_below)
def _ov_exact_below(q, row, lim, stops):
    """The exact distance if it is ``< lim``, else some value ``>= lim`` (then the point cannot
    matter): pixels ``[0, stops[0])``, ``[stops[0], stops[1])``, ... in turn, stopping after the
    first stretch that lifts the maximum to ``lim`` (``stops[-1] == d``). Unsigned loop indices:
    numba's negative-index wrap-around would keep LLVM from vectorising a loop that starts at a
    variable."""
    if q.dtype == types.uint8:
        def impl_u8(q, row, lim, stops):
            acc = np.uint8(0)
            k0 = np.uint64(0)
            for s in range(stops.shape[0]):
                k1 = np.uint64(stops[s])
                for k in range(k0, k1):
                    a = q[k]
                    b = row[k]
                    acc = max(acc, np.uint8(max(a, b) - min(a, b)))
                if np.int64(acc) >= lim:
                    break
                k0 = k1
            return np.int64(acc)
        return impl_u8
    if row.dtype == types.uint8:
        def impl_f64u8(q, row, lim, stops):  # the value separation compares with: float64(y) / 255
            acc = 0.0
            k0 = np.uint64(0)
            for s in range(stops.shape[0]):
                k1 = np.uint64(stops[s])
                for k in range(k0, k1):
                    acc = max(acc, abs(q[k] - np.float64(row[k]) / 255.0))
                if acc >= lim:
                    break
                k0 = k1
            return acc
        return impl_f64u8

    def impl_f64(q, row, lim, stops):
        acc = 0.0
        k0 = np.uint64(0)
        for s in range(stops.shape[0]):
            k1 = np.uint64(stops[s])
            for k in range(k0, k1):
                acc = max(acc, abs(q[k] - row[k]))
            if acc >= lim:
                break
            k0 = k1
        return acc
    return impl_f64


def just_above(v):  # pragma: no cover
    raise NotImplementedError


@overload(just_above)
def _ov_just_above(v):
    if isinstance(v, types.Integer):
        return lambda v: v + 1
    return lambda v: np.nextafter(v, np.inf)


def raw_of(lim):  # pragma: no cover
    raise NotImplementedError


@overload(raw_of)
def _ov_raw_of(lim):
    """A limit in byte units (for choosing probes)."""
    if isinstance(lim, types.Integer):
        return lambda lim: lim

    def impl(lim):
        if not (lim < 2.0):
            return BIG_INT
        return np.int64(np.floor(lim * 255.0))
    return impl


@intrinsic
def prefetch(typingctx, arr):
    """Ask the cache for the first line of the 1-d array ``arr`` ahead of its use (a hint: never
    changes a result)."""
    sig = types.void(arr)

    def codegen(context, builder, signature, args):
        ptr = context.make_array(signature.args[0])(context, builder, args[0]).data
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)]), "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 3), ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()
    return sig, codegen


__all__ = ["BIG_INT", "bounds", "exact_below", "just_above", "prefetch", "probe_col", "raw_of", "term_prunes"]
