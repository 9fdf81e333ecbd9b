"""Sums of absolute differences of byte rows -- the exact l1 distance on bytes -- 32 bytes at a time.

:func:`sad` is a numba intrinsic over chunks of :data:`LANES` bytes. Where numba compiles for an
x86 CPU with AVX2 it runs ``vpsadbw`` (32 byte differences summed into four 64-bit lanes by one
instruction, accumulated as a vector, summed once at the end); elsewhere it emits portable LLVM
IR (widen, subtract, absolute value, add) that any target compiles. Both are exact. Rows are read
as whole chunks: :func:`padded` gives them zero-padded to a multiple of :data:`LANES` bytes (zeros
on both sides add nothing).
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
#: chunks summed between two early-exit checks of :func:`l1_until`
CHECK_CHUNKS = 4

_I8x32 = ir.VectorType(ir.IntType(8), LANES)
_I64x4 = ir.VectorType(ir.IntType(64), 4)
_I16x32 = ir.VectorType(ir.IntType(16), LANES)
_I64 = ir.IntType(64)


def host_has_psadbw() -> bool:
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


def _codegen(psadbw: bool):
    def codegen(context, builder, signature, args):
        pa, pb = _chunk_pointers(context, builder, signature, args)
        if psadbw:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I64x4, [_I8x32, _I8x32]),
                                                "llvm.x86.avx2.psad.bw")
            acc = cgutils.alloca_once_value(builder, ir.Constant(_I64x4, None))
        else:
            absf = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I16x32, [_I16x32, ir.IntType(1)]),
                                                  "llvm.abs.v32i16")
            red = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(16), [_I16x32]),
                                                 "llvm.vector.reduce.add.v32i16")
            acc = cgutils.alloca_once_value(builder, ir.Constant(_I64, 0))
        with cgutils.for_range(builder, args[3]) as loop:
            x = builder.load(builder.gep(pa, [loop.index]), align=1)
            y = builder.load(builder.gep(pb, [loop.index]), align=1)
            if psadbw:
                part = builder.call(fn, [x, y])
            else:  # 32 differences of at most 255: their sum fits 16 bits
                diff = builder.sub(builder.zext(x, _I16x32), builder.zext(y, _I16x32))
                part = builder.zext(builder.call(red, [builder.call(absf, [diff, ir.Constant(ir.IntType(1), 0)])]),
                                    _I64)
            builder.store(builder.add(builder.load(acc), part), acc)
        total = builder.load(acc)
        if psadbw:
            lanes = [builder.extract_element(total, ir.Constant(ir.IntType(32), k)) for k in range(4)]
            total = builder.add(builder.add(lanes[0], lanes[1]), builder.add(lanes[2], lanes[3]))
        return total
    return codegen


def _make(psadbw: bool):
    @intrinsic
    def _sad(typingctx, a, b, start, n):
        """``sum |a[32 start : 32 (start + n)] - b[...]|`` (int64) of two contiguous uint8 rows."""
        if not (isinstance(a, types.Array) and isinstance(b, types.Array) and a.dtype == types.uint8
                and b.dtype == types.uint8 and a.layout == "C" and b.layout == "C"):
            return None
        return types.int64(a, b, start, n), _codegen(psadbw)
    return _sad


#: the portable form (any target); :func:`sad` is it where the host has no AVX2
sad_portable = _make(False)
#: ``sad(a, b, start, n)``: the sum of absolute differences of chunks ``start .. start + n - 1``
#: (:data:`LANES` bytes each) of the contiguous uint8 rows ``a`` and ``b``, exact (int64)
sad = _make(True) if host_has_psadbw() else sad_portable


@njit(inline="always")
def l1_until(a, b, limit):  # pragma: no cover - numba
    """The exact l1 distance of two padded byte rows (int64), or a partial sum above ``limit``
    once past it (checked every :data:`CHECK_CHUNKS` chunks)."""
    n = a.shape[0] // LANES
    s = np.int64(0)
    for k in range(0, n, CHECK_CHUNKS):
        s += sad(a, b, k, min(CHECK_CHUNKS, n - k))
        if s > limit:
            return s
    return s


def padded(x: np.ndarray) -> np.ndarray:
    """``x`` (n, d) uint8 as a C-contiguous copy zero-padded to a multiple of :data:`LANES` columns
    (at least one chunk)."""
    n, d = x.shape
    out = np.zeros((n, max(1, -(-d // LANES)) * LANES), dtype=np.uint8)
    out[:, :d] = x
    return out


__all__ = ["CHECK_CHUNKS", "LANES", "host_has_psadbw", "l1_until", "padded", "sad", "sad_portable"]
