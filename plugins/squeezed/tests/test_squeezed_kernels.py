"""The two kernels: Triton (interpreter on CPU) against the PyTorch reference on the ops' own samples,
and the references against independent formulas (exact softmax, dense causal attention)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from splice.kernels.testing import backend_params, check_backend
from splice_squeezed.kernels import (
    CENTROID_SCORES,
    SELECTED_ATTENTION,
    centroid_scores_reference,
    selected_attention_reference,
)


@pytest.mark.parametrize("op,backend", backend_params([CENTROID_SCORES, SELECTED_ATTENTION]))
def test_backend_matches_reference(op: str, backend: str) -> None:
    results = check_backend(op, backend)  # sets TRITON_INTERPRET=1 for CPU tensors itself
    assert len(results) >= 4


def test_one_key_per_cluster_is_exact_softmax() -> None:
    """With every key its own cluster (N_j = 1) the size-weighted estimate is the attention probability."""
    g = torch.Generator().manual_seed(0)
    q, keys = torch.randn(2, 4, 6, 16, generator=g), torch.randn(2, 2, 30, 16, generator=g)
    est = centroid_scores_reference(q, keys, torch.zeros(2, 4, 6, 30), group_size=1, scale=0.25)
    exact = torch.softmax(q @ keys.repeat_interleave(2, dim=1).transpose(-1, -2) * 0.25, dim=-1)
    assert torch.allclose(est, exact, atol=1e-6)
    shared = centroid_scores_reference(q, keys, torch.zeros(2, 4, 1, 30), group_size=6, scale=0.25)
    assert torch.allclose(shared[:, :, 0], exact.mean(2), atol=1e-6)


def test_cluster_size_weights_the_denominator() -> None:
    """A cluster of N identical keys is N keys: the estimate equals softmax over the expanded keys."""
    g = torch.Generator().manual_seed(1)
    q, cents = torch.randn(1, 1, 3, 8, generator=g), torch.randn(1, 1, 4, 8, generator=g)
    sizes = torch.tensor([1.0, 5.0, 2.0, 3.0])
    est = centroid_scores_reference(q, cents, sizes.log().expand(1, 1, 3, 4).contiguous(), group_size=1, scale=1.0)
    expanded = cents[0, 0].repeat_interleave(sizes.long(), dim=0)
    probs = torch.softmax(q[0, 0] @ expanded.T, dim=-1)
    first_of = torch.cumsum(sizes.long(), 0) - sizes.long()
    assert torch.allclose(est[0, 0], probs[:, first_of], atol=1e-6)
    # an excluded cluster scores 0 and leaves the denominator
    ls = sizes.log().expand(1, 1, 3, 4).clone()
    ls[..., 1] = float("-inf")
    est2 = centroid_scores_reference(q, cents, ls, group_size=1, scale=1.0)
    keep = torch.tensor([0, 2, 3])
    expanded2 = cents[0, 0, keep].repeat_interleave(sizes[keep].long(), dim=0)
    probs2 = torch.softmax(q[0, 0] @ expanded2.T, dim=-1)
    assert torch.all(est2[0, 0, :, 1] == 0)
    assert torch.allclose(est2[0, 0, :, keep], probs2[:, torch.tensor([0, 2, 4])], atol=1e-6)


@pytest.mark.parametrize("group_size", [1, 5])
def test_everything_selected_is_dense_causal_attention(group_size: int) -> None:
    g = torch.Generator().manual_seed(2)
    p, t = 40, 5
    q = torch.randn(1, 4, t, 16, generator=g)
    k, v = torch.randn(1, 2, p + t, 16, generator=g), torch.randn(1, 2, p + t, 16, generator=g)
    idx = torch.arange(p).view(1, 1, 1, p).expand(1, 4, t // group_size, p).contiguous()
    out = selected_attention_reference(q, k, v, idx, prefix_length=p, group_size=group_size, scale=0.25)
    mask = torch.ones(t, p + t, dtype=torch.bool).tril(diagonal=p)
    ref = F.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), attn_mask=mask,
                                         scale=0.25)
    assert torch.allclose(out, ref, atol=1e-5)


def test_selected_subset_equals_attention_over_that_subset() -> None:
    g = torch.Generator().manual_seed(3)
    p = 30
    q = torch.randn(1, 1, 1, 8, generator=g)
    k, v = torch.randn(1, 1, p + 1, 8, generator=g), torch.randn(1, 1, p + 1, 8, generator=g)
    chosen = torch.tensor([3, 17, 29])
    idx = torch.cat([chosen, torch.tensor([-1, -1])]).view(1, 1, 1, 5)
    out = selected_attention_reference(q, k, v, idx, prefix_length=p, group_size=1, scale=1.0)
    keys = torch.cat([chosen, torch.tensor([p])])
    w = torch.softmax(q[0, 0] @ k[0, 0, keys].T, dim=-1)
    assert torch.allclose(out[0, 0], w @ v[0, 0, keys], atol=1e-6)
