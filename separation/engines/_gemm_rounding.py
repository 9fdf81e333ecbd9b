"""Rigorous bounds on the rounding of a float32 GEMM's squared distances ``|q|^2 + |d|^2 - 2 q.d``.

Shared by the float32 l2 search with its exact recheck (:mod:`.gemm`) and the pooled lower bound
of :mod:`._pooled_l2`: a pair is ruled out only when even its smallest possible exact value could
not change the answer.
"""
from __future__ import annotations

import numpy as np

from ..core.extras import require

torch = require("torch", "the exact l2 search on the CPU (float32 GEMM with an exact recheck)")

U32 = float(np.finfo(np.float32).eps) / 2  # unit round-off of float32


def ieee_float32() -> bool:
    """Whether torch's float32 GEMMs round as IEEE float32, as every bound here assumes: False once
    its float32 matmul precision is below "highest" (then they may round through bf16 / tf32)."""
    return torch.get_float32_matmul_precision() == "highest"


def _approx_sq(Qf, Df, qn, dn):
    """float32 ``|q - d|^2`` of every pair, ``(nq, nd)``, from one GEMM (``qn``/``dn``: exact squared norms);
    the GEMM in float64 where float32 GEMMs are not IEEE float32 (:func:`ieee_float32`)."""
    d2 = Qf @ Df.T if ieee_float32() else (Qf.double() @ Df.double().T).to(torch.float32)
    return d2.mul_(-2.0).add_(qn.to(torch.float32)[:, None]).add_(dn.to(torch.float32)[None, :])


def _tolerance(sq, other_sq, dim):
    """Rigorous bound on ``|_approx_sq - exact|`` of each point (squared norms ``sq``, float64) against
    every point of the other set (squared norms ``other_sq``): float64, one per point.

    ``gamma`` bounds the dot product's rounding (Higham's gamma_n with 4 operations of slack); the
    second term covers the float32 rounding of both squared norms and of the sum."""
    gamma = (dim + 4) * U32 / (1 - (dim + 4) * U32)
    other_max = other_sq.max()
    cross = sq.sqrt() * other_max.sqrt()
    return 2 * gamma * cross + 4 * U32 * (sq + other_max + 2 * cross)


def _limit(d2_min, best, tol):
    """float32 threshold per point: a pair above it cannot be the point's nearest.

    The true nearest j* has ``d2(j*) <= exact(j*) + tol <= exact(argmin d2) + tol <= min d2 + 2 tol``,
    and ``<= best exact so far + tol``; ``1 + 8 u`` absorbs the rounding of this float64 arithmetic
    and of the conversion to float32."""
    return (torch.minimum(d2_min.double() + 2 * tol, best + tol) * (1 + 8 * U32)).to(torch.float32)


def _norms(t):
    return t.to(torch.float64).square().sum(dim=1)


__all__ = ["U32", "ieee_float32"]
