"""FlatQuant's kernel: the online Kronecker transform fused with per-token activation quantization.

Registered with ``splice.kernels`` as the op ``flatquant_kron_quant`` (reference: PyTorch; backend
"triton"). ``kron_quant(...)`` dispatches; ``SPLICE_KERNELS=reference`` forces the reference.
"""

from __future__ import annotations

import torch
from splice.kernels import Tolerance, define_op, get_op, register_backend, triton_available
from splice.kernels.errors import UnknownOp

from .reference import dequantize, kron_quant_reference
from .samples import kron_quant_samples

OP = "flatquant_kron_quant"


def _define():
    op = define_op(
        OP, kron_quant_reference, samples=kron_quant_samples, differentiable=False,
        # codes are integers (exact, except where a quotient sits on a rounding tie and the two
        # backends' fp32 matmuls sum in different orders); scales agree to fp32 rounding
        tol={torch.float32: Tolerance(1e-5, 1e-6)}, mismatch_budget=1e-3,
        description="y = x @ kron(L, R) then per-token clipped int quantization (FlatQuant, fused)",
    )
    register_backend(OP, "triton", "splice_flatquant.kernels.triton:kron_quant_triton", available=triton_available)
    return op


def op():
    """The registered op (defined on first use; re-defined if a test's isolated registry dropped it)."""
    try:
        return get_op(OP)
    except UnknownOp:
        return _define()


def kron_quant(x, left, right=None, *, bits=4, symmetric=True, clip_max=None, clip_min=None):
    """Dispatching call of ``flatquant_kron_quant`` (see ``kron_quant_reference``)."""
    return op()(x, left, right, bits=bits, symmetric=symmetric, clip_max=clip_max, clip_min=clip_min)


__all__ = ["OP", "dequantize", "kron_quant", "kron_quant_reference", "op"]
