"""splice.kernels: kernel ops with a pure-PyTorch reference and accelerated backends.

Calling an op (``fake_quant``, ``dequant_matmul``, ``hadamard_transform``,
``block_sparse_attention``) runs the best backend available for the inputs; SPLICE_KERNELS or
``use_backends`` forces one. See docs/kernels.md.
"""

from __future__ import annotations

from .availability import cuda_available, interpreter_enabled, triton_available
from .dispatch import (
    REFERENCE,
    Backend,
    BackendInfo,
    Op,
    OpInfo,
    backend,
    define_op,
    get_op,
    isolated_registry,
    list_ops,
    ops,
    register_backend,
)
from .errors import (
    BackendUnavailable,
    KernelArgumentError,
    KernelError,
    KernelSpecError,
    UnknownBackend,
    UnknownOp,
)
from .fake_quant import fake_quant
from .hadamard import hadamard_matrix, hadamard_transform
from .packed import PackedWeight, dequant_matmul, dequantize_weight, pack, quantize_weight, unpack
from .sample import Sample, Tolerance
from .sparse_attention import block_sparse_attention
from .spec import ENV_VAR, use_backends

__all__ = [
    "ENV_VAR",
    "REFERENCE",
    "Backend",
    "BackendInfo",
    "BackendUnavailable",
    "KernelArgumentError",
    "KernelError",
    "KernelSpecError",
    "Op",
    "OpInfo",
    "PackedWeight",
    "Sample",
    "Tolerance",
    "UnknownBackend",
    "UnknownOp",
    "backend",
    "block_sparse_attention",
    "cuda_available",
    "define_op",
    "dequant_matmul",
    "dequantize_weight",
    "fake_quant",
    "get_op",
    "hadamard_matrix",
    "hadamard_transform",
    "interpreter_enabled",
    "isolated_registry",
    "list_ops",
    "ops",
    "pack",
    "quantize_weight",
    "register_backend",
    "triton_available",
    "unpack",
    "use_backends",
]
