"""Block-sparse attention semantics on every backend: dense equivalence when everything is
selected, causal offsets, mask/index/per-KV-head selections, empty rows, lse."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from splice.kernels import KernelArgumentError, get_op

BACKENDS = ["reference", "triton"]


def bsa(backend: str, *args, **kwargs):
    return get_op("block_sparse_attention").run(backend, *args, **kwargs)


def qkv(b=1, h=4, hkv=2, t=32, s=32, d=16):
    return torch.randn(b, h, t, d), torch.randn(b, hkv, s, d), torch.randn(b, hkv, s, d)


def dense(q, k, v, mask=None, causal=False):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("causal", [False, True])
def test_all_blocks_selected_is_dense_attention(backend: str, causal: bool) -> None:
    q, k, v = qkv(t=48, s=48)
    blocks = torch.ones(1, 1, 3, 3, dtype=torch.bool)
    out = bsa(backend, q, k, v, blocks, block_size=16, causal=causal)
    assert torch.allclose(out, dense(q, k, v, causal=causal), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_causal_key_offset_matches_explicit_mask(backend: str) -> None:
    q, k, v = qkv(t=20, s=64)
    blocks = torch.ones(1, 1, 2, 4, dtype=torch.bool)
    allowed = torch.arange(64)[None, :] <= torch.arange(20)[:, None] + 44
    out = bsa(backend, q, k, v, blocks, block_size=16, causal=True)  # default offset S - T = 44
    assert torch.allclose(out, dense(q, k, v, mask=allowed), atol=1e-5)
    allowed = torch.arange(64)[None, :] <= torch.arange(20)[:, None] + 10
    out = bsa(backend, q, k, v, blocks, block_size=16, causal=True, key_offset=10)
    assert torch.allclose(out, dense(q, k, v, mask=allowed), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_selection_restricts_keys(backend: str) -> None:
    q, k, v = qkv(t=32, s=64)
    blocks = torch.rand(1, 4, 2, 4) < 0.5
    blocks[..., 0] = True
    allowed = blocks.repeat_interleave(16, 2).repeat_interleave(16, 3)
    out = bsa(backend, q, k, v, blocks, block_size=16)
    assert torch.allclose(out, dense(q, k, v, mask=allowed), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_indices_mask_and_kv_head_forms_agree(backend: str) -> None:
    q, k, v = qkv(h=4, hkv=2, t=32, s=64)
    idx = torch.tensor([[[[0, 2, -1], [3, 3, 1]], [[1, -1, -1], [0, 1, 2]]]])  # per KV head, a duplicate
    mask = torch.zeros(1, 2, 2, 4, dtype=torch.bool)
    for hk in range(2):
        for qb in range(2):
            for j in idx[0, hk, qb].tolist():
                if j >= 0:
                    mask[0, hk, qb, j] = True
    per_head = mask.repeat_interleave(2, dim=1)
    a = bsa(backend, q, k, v, idx, block_size=16)
    b = bsa(backend, q, k, v, mask, block_size=16)
    c = bsa(backend, q, k, v, per_head, block_size=16)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(b, c, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_rows_give_zero_and_lse_matches(backend: str) -> None:
    q, k, v = qkv(h=2, hkv=1, t=32, s=32)
    blocks = torch.tensor([[[[False, False], [True, True]]]])
    out, lse = bsa(backend, q, k, v, blocks, block_size=16, return_lse=True)
    assert torch.equal(out[:, :, :16], torch.zeros_like(out[:, :, :16]))
    assert torch.isneginf(lse[:, :, :16]).all()
    scores = (q @ k.repeat_interleave(2, 1).transpose(-1, -2)) * 16**-0.5
    assert torch.allclose(lse[:, :, 16:], torch.logsumexp(scores[:, :, 16:], -1), atol=1e-5)
    assert lse.dtype == torch.float32 and not lse.requires_grad


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_of_empty_rows_are_zero(backend: str) -> None:
    q, k, v = (t.requires_grad_() for t in qkv(h=2, hkv=1, t=32, s=32))
    blocks = torch.tensor([[[[False, False], [True, False]]]])
    bsa(backend, q, k, v, blocks, block_size=16).sum().backward()
    assert torch.equal(q.grad[:, :, :16], torch.zeros_like(q.grad[:, :, :16]))
    assert torch.equal(k.grad[:, :, 16:], torch.zeros_like(k.grad[:, :, 16:]))
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize(("blocks", "match"), [
    (torch.ones(1, 3, 2, 2, dtype=torch.bool), "do not fit"),
    (torch.ones(1, 1, 2, 3, dtype=torch.bool), "key blocks"),
    (torch.tensor([[[[0], [5]]]]), "indices"),
    (torch.ones(1, 1, 2, 2), "bool"),
])
def test_selection_errors(blocks: torch.Tensor, match: str) -> None:
    q, k, v = qkv(t=32, s=32)
    with pytest.raises(KernelArgumentError, match=match):
        get_op("block_sparse_attention")(q, k, v, blocks, block_size=16)


def test_shape_errors() -> None:
    q, k, v = qkv(h=3, hkv=2)
    with pytest.raises(KernelArgumentError, match="multiple"):
        get_op("block_sparse_attention")(q, k, v, torch.ones(1, 1, 2, 2, dtype=torch.bool), block_size=16)
