"""Every registered accelerated backend against its op's reference, over the op's own samples
(grid of shapes and dtypes), outputs and gradients."""

from __future__ import annotations

import pytest
from splice.kernels.testing import backend_params, check_backend


@pytest.mark.parametrize(("op", "backend"), backend_params())
def test_backend_matches_reference(op: str, backend: str) -> None:
    results = check_backend(op, backend)
    assert results, f"{op} has no samples"
    assert all(r.numel > 0 for r in results)


def test_every_builtin_op_has_a_triton_backend() -> None:
    pairs = set(backend_params())
    for op in ("fake_quant", "dequant_matmul", "hadamard", "block_sparse_attention"):
        assert (op, "triton") in pairs
