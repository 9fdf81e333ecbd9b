"""Sums of absolute and of squared differences of byte rows -- exact l1 and squared l2 distances
on bytes -- 32 bytes at a time.

:func:`sad` and :func:`ssd` are numba intrinsics over chunks of :data:`LANES` bytes. Where numba
compiles for an x86 CPU with AVX2, ``sad`` runs ``vpsadbw`` (32 byte differences summed into four
64-bit lanes by one instruction) and ``ssd`` ``vpmaddwd`` (16-bit differences squared and summed in
pairs into 32-bit lanes), each accumulated as a vector and summed once at the end; elsewhere they
emit portable LLVM IR (widen, subtract, absolute value or square, add) that any target compiles.
All are exact. Rows are read as whole chunks: :func:`padded` gives them zero-padded to a multiple
of :data:`LANES` bytes (zeros on both sides add nothing).
"""
from __future__ import annotations

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic

#: bytes per chunk (one 256-bit vector)
LANES = 32
#: chunks summed between two early-exit checks of :func:`l1_until` / :func:`l2_until`
CHECK_CHUNKS = 4
#: chunks one :func:`ssd` call sums exactly (its 32-bit lanes take at most 4 * 255^2 a chunk)
MAX_SSD_CHUNKS = (1 << 31) // (4 * 255 ** 2)

_I8x32 = ir.VectorType(ir.IntType(8), LANES)
_I64x4 = ir.VectorType(ir.IntType(64), 4)
_I16x32 = ir.VectorType(ir.IntType(16), LANES)
_I16x16 = ir.VectorType(ir.IntType(16), 16)
_I32x8 = ir.VectorType(ir.IntType(32), 8)
_I32x32 = ir.VectorType(ir.IntType(32), LANES)
_I64 = ir.IntType(64)


def host_has_avx2() -> bool:
    """Whether numba compiles for this host's CPU (no ``NUMBA_CPU_NAME``) and it is x86 with AVX2."""
    if config.CPU_NAME or config.CPU_FEATURES:
        return False
    return "+avx2" in llvm_binding.get_host_cpu_features().flatten().split(",")


def _chunk_pointers(context, builder, signature, args):
    """The ``<32 x i8>*`` pointers to chunk ``start`` of the two rows."""
    a, b, start = args[0], args[1], args[2]
    ptrs = []
    for ty, row in ((signature.args[0], a), (signature.args[1], b)):
        data = context.make_array(ty)(context, builder, row).data
        ptrs.append(builder.gep(builder.bitcast(data, _I8x32.as_pointer()), [start]))
    return ptrs


def _sad_chunk(builder, x, y, psadbw):
    """One chunk's absolute differences summed: ``<4 x i64>`` (vpsadbw) or an i64."""
    if psadbw:
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I64x4, [_I8x32, _I8x32]),
                                            "llvm.x86.avx2.psad.bw")
        return builder.call(fn, [x, y])
    absf = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I16x32, [_I16x32, ir.IntType(1)]),
                                          "llvm.abs.v32i16")
    red = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(16), [_I16x32]),
                                         "llvm.vector.reduce.add.v32i16")
    diff = builder.sub(builder.zext(x, _I16x32), builder.zext(y, _I16x32))
    # 32 differences of at most 255: their sum fits 16 bits
    return builder.zext(builder.call(red, [builder.call(absf, [diff, ir.Constant(ir.IntType(1), 0)])]), _I64)


def _ssd_chunk(builder, x, y, pmaddwd):
    """One chunk's squared differences summed: ``<8 x i32>`` (vpmaddwd on both halves) or an i64."""
    diff = builder.sub(builder.zext(x, _I16x32), builder.zext(y, _I16x32))
    if pmaddwd:
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I32x8, [_I16x16, _I16x16]),
                                            "llvm.x86.avx2.pmadd.wd")
        halves = [builder.shuffle_vector(diff, diff, ir.Constant(ir.VectorType(ir.IntType(32), 16),
                                                                  list(range(h, h + 16)))) for h in (0, 16)]
        return builder.add(builder.call(fn, [halves[0], halves[0]]), builder.call(fn, [halves[1], halves[1]]))
    red = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [_I32x32]),
                                         "llvm.vector.reduce.add.v32i32")
    wide = builder.sext(diff, _I32x32)
    return builder.zext(builder.call(red, [builder.mul(wide, wide)]), _I64)  # at most 32 * 255^2


def _codegen(chunk, vector_type, native: bool):
    """An intrinsic's code: ``chunk(builder, x, y, native)`` over the chunks asked for, summed in a
    vector of ``vector_type`` (native) or an i64, the total as an i64."""
    def codegen(context, builder, signature, args):
        pa, pb = _chunk_pointers(context, builder, signature, args)
        acc = cgutils.alloca_once_value(builder, ir.Constant(vector_type, None) if native else ir.Constant(_I64, 0))
        with cgutils.for_range(builder, args[3]) as loop:
            x = builder.load(builder.gep(pa, [loop.index]), align=1)
            y = builder.load(builder.gep(pb, [loop.index]), align=1)
            builder.store(builder.add(builder.load(acc), chunk(builder, x, y, native)), acc)
        total = builder.load(acc)
        if native:
            lanes = [builder.extract_element(total, ir.Constant(ir.IntType(32), k)) for k in range(vector_type.count)]
            total = _I64(0)
            for lane in lanes:  # non-negative lanes
                total = builder.add(total, lane if lane.type == _I64 else builder.zext(lane, _I64))
        return total
    return codegen


def _make(chunk, vector_type, native: bool):
    @intrinsic
    def _sum(typingctx, a, b, start, n):
        """The sum over chunks ``start .. start + n - 1`` of two contiguous uint8 rows (int64)."""
        if not (isinstance(a, types.Array) and isinstance(b, types.Array) and a.dtype == types.uint8
                and b.dtype == types.uint8 and a.layout == "C" and b.layout == "C"):
            return None
        return types.int64(a, b, start, n), _codegen(chunk, vector_type, native)
    return _sum


#: the portable forms (any target); :func:`sad` / :func:`ssd` are them where the host has no AVX2
sad_portable = _make(_sad_chunk, _I64x4, False)
ssd_portable = _make(_ssd_chunk, _I32x8, False)
#: ``sad(a, b, start, n)``: the sum of absolute differences of chunks ``start .. start + n - 1``
#: (:data:`LANES` bytes each) of the contiguous uint8 rows ``a`` and ``b``, exact (int64)
sad = _make(_sad_chunk, _I64x4, True) if host_has_avx2() else sad_portable
#: ``ssd(a, b, start, n)``: the same for squared differences, exact for ``n <= MAX_SSD_CHUNKS``
ssd = _make(_ssd_chunk, _I32x8, True) if host_has_avx2() else ssd_portable


@njit(inline="always")
def _until(a, b, limit, squared):  # pragma: no cover - numba
    """:func:`ssd` (``squared``) or :func:`sad` over two padded byte rows, stopping once past
    ``limit``: checked every :data:`CHECK_CHUNKS` chunks (a constant count the compiler unrolls),
    the remainder after the last check."""
    n = a.shape[0] // LANES
    full = n - n % CHECK_CHUNKS
    s = np.int64(0)
    for k in range(0, full, CHECK_CHUNKS):
        s += ssd(a, b, k, CHECK_CHUNKS) if squared else sad(a, b, k, CHECK_CHUNKS)
        if s > limit:
            return s
    if full < n:
        s += ssd(a, b, full, n - full) if squared else sad(a, b, full, n - full)
    return s


@njit(inline="always")
def l1_until(a, b, limit):  # pragma: no cover - numba
    """The exact l1 distance of two padded byte rows (int64), or a partial sum above ``limit``
    once past it."""
    return _until(a, b, limit, False)


@njit(inline="always")
def l2_until(a, b, limit):  # pragma: no cover - numba
    """The exact squared l2 distance of two padded byte rows (int64), or a partial sum above
    ``limit`` once past it."""
    return _until(a, b, limit, True)


def padded(x: np.ndarray) -> np.ndarray:
    """``x`` (n, d) uint8 as a C-contiguous copy zero-padded to a multiple of :data:`LANES` columns
    (at least one chunk)."""
    n, d = x.shape
    out = np.zeros((n, max(1, -(-d // LANES)) * LANES), dtype=np.uint8)
    out[:, :d] = x
    return out


__all__ = ["CHECK_CHUNKS", "LANES", "MAX_SSD_CHUNKS", "host_has_avx2", "l1_until", "l2_until", "padded", "sad",
           "sad_portable", "ssd", "ssd_portable"]
