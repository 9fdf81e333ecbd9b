"""Triton kernels of the CUDA engine (imported only when Triton is available).

``nn_kernel``: rows only, any dtype (float64 included); per query, the smallest distance and the
smallest index among ties, over database tiles in index order.

``pair_kernel``: integer distances (bytes) with packed ``distance << 32 | index`` keys updated by
``atomic_min``. The lexicographic minimum of the keys is exactly 'smallest distance, then smallest
index', so rows *and* columns of a tile can be updated by any number of programs at once:
train-train runs each pair of points once (upper triangle). With ``PRUNE``, tiles stop early,
exactly, once no entry can still beat or tie-win its row's (and column's) key read at the start.
"""
import triton
import triton.language as tl


@triton.jit
def nn_kernel(Q, D, YQ, YD, OUT_D, OUT_I, nq, nd, dim, sq, sd,
              IS_MAX: tl.constexpr, USE_LABELS: tl.constexpr, IS_INT: tl.constexpr,
              BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pid = tl.program_id(0)
    rm = pid * BM + tl.arange(0, BM)
    m_ok = rm < nq
    if IS_INT:
        best = tl.full([BM], 2147483647, tl.int32)
    else:
        best = tl.full([BM], float("inf"), tl.float64)
    besti = tl.full([BM], 2147483647, tl.int32)
    if USE_LABELS:
        yq = tl.load(YQ + rm, mask=m_ok, other=-1)
    for n0 in range(0, nd, BN):
        rn = n0 + tl.arange(0, BN)
        n_ok = rn < nd
        if IS_INT:
            acc = tl.zeros([BM, BN], tl.int32)
        else:
            acc = tl.zeros([BM, BN], tl.float64)
        for k0 in range(0, dim, BK):
            rk = k0 + tl.arange(0, BK)
            k_ok = rk < dim
            a = tl.load(Q + rm[:, None].to(tl.int64) * sq + rk[None, :],
                        mask=m_ok[:, None] & k_ok[None, :], other=0)
            b = tl.load(D + rn[:, None].to(tl.int64) * sd + rk[None, :],
                        mask=n_ok[:, None] & k_ok[None, :], other=0)
            if IS_INT:
                a = a.to(tl.int32)
                b = b.to(tl.int32)
            diff = tl.abs(a[:, None, :] - b[None, :, :])
            if IS_MAX:
                acc = tl.maximum(acc, tl.max(diff, axis=2))
            else:
                acc += tl.sum(diff, axis=2)
        valid = n_ok[None, :]
        if USE_LABELS:
            yd = tl.load(YD + rn, mask=n_ok, other=-2)
            valid = valid & (yq[:, None] != yd[None, :])
        if IS_INT:
            acc = tl.where(valid, acc, 2147483647)
        else:
            acc = tl.where(valid, acc, float("inf"))
        m = tl.min(acc, axis=1)
        cand = tl.where((acc == m[:, None]) & valid, rn[None, :], 2147483647)
        mi = tl.min(cand, axis=1)
        upd = m < best  # strictly: earlier tiles hold smaller indices
        best = tl.where(upd, m, best)
        besti = tl.where(upd, mi, besti)
    tl.store(OUT_D + rm, best.to(tl.float64), mask=m_ok)
    tl.store(OUT_I + rm, besti, mask=m_ok)


@triton.jit
def _accumulate(acc, X, Y, rm, rn, m_ok, n_ok, k0, dim, sx, sy, IS_MAX: tl.constexpr, BK: tl.constexpr):
    rk = k0 + tl.arange(0, BK)
    k_ok = rk < dim
    a = tl.load(X + rm[:, None].to(tl.int64) * sx + rk[None, :],
                mask=m_ok[:, None] & k_ok[None, :], other=0).to(tl.int32)
    b = tl.load(Y + rn[:, None].to(tl.int64) * sy + rk[None, :],
                mask=n_ok[:, None] & k_ok[None, :], other=0).to(tl.int32)
    diff = tl.abs(a[:, None, :] - b[None, :, :])
    if IS_MAX:
        return tl.maximum(acc, tl.max(diff, axis=2))
    return acc + tl.sum(diff, axis=2)

@triton.jit
def pair_kernel(X, Y, LX, LY, KEYX, KEYY, nx, ny, dim, sx, sy, x_off, y_off,
                IS_MAX: tl.constexpr, SYM: tl.constexpr, TRI: tl.constexpr, PRUNE: tl.constexpr,
                BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, CHECK: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    if TRI and pid_n < pid_m:
        return
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    m_ok = rm < nx
    n_ok = rn < ny
    lx = tl.load(LX + rm, mask=m_ok, other=-1)
    ly = tl.load(LY + rn, mask=n_ok, other=-2)
    valid = m_ok[:, None] & n_ok[None, :] & (lx[:, None] != ly[None, :])
    gx = (rm + x_off).to(tl.int64)
    gy = (rn + y_off).to(tl.int64)
    kx = tl.load(KEYX + rm + x_off, mask=m_ok, other=9223372036854775807)
    bx = kx >> 32
    ix = kx & 4294967295
    if SYM:
        ky = tl.load(KEYY + rn + y_off, mask=n_ok, other=9223372036854775807)
        by = ky >> 32
        iy = ky & 4294967295
    acc = tl.zeros([BM, BN], tl.int32)
    if PRUNE:
        k0 = 0
        alive = tl.sum(valid.to(tl.int32)) > 0
        while (k0 < dim) & alive:
            for kk in tl.static_range(CHECK):
                acc = _accumulate(acc, X, Y, rm, rn, m_ok, n_ok, k0 + kk * BK, dim, sx, sy, IS_MAX, BK)
            k0 += CHECK * BK
            acc64 = acc.to(tl.int64)
            live = valid & ((acc64 < bx[:, None]) | ((acc64 == bx[:, None]) & (gy[None, :] < ix[:, None])))
            if SYM:
                live = live | (valid & ((acc64 < by[None, :]) |
                                        ((acc64 == by[None, :]) & (gx[:, None] < iy[None, :]))))
            alive = tl.sum(live.to(tl.int32)) > 0
    else:  # a plain loop: the compiler pipelines its loads
        for k0 in range(0, dim, BK):
            acc = _accumulate(acc, X, Y, rm, rn, m_ok, n_ok, k0, dim, sx, sy, IS_MAX, BK)
    # partial sums of abandoned tiles are lower bounds whose keys exceed the keys read above,
    # so the atomic minimum ignores them: no special case needed
    acc64 = acc.to(tl.int64) << 32
    row_key = tl.where(valid, acc64 | gy[None, :], 9223372036854775807)
    tl.atomic_min(KEYX + rm + x_off, tl.min(row_key, axis=1), mask=m_ok)
    if SYM:
        col_key = tl.where(valid, acc64 | gx[:, None], 9223372036854775807)
        tl.atomic_min(KEYY + rn + y_off, tl.min(col_key, axis=0), mask=n_ok)


__all__ = ["nn_kernel", "pair_kernel"]
