"""Round-to-nearest: packed storage, error bounds, bits per weight, KV quantization."""

from __future__ import annotations

import pytest
import torch

from splice.builtins.rtn import RTN
from splice.kinds import bits_per_weight
from splice.quant import QuantLinear, fake_quant, storage_bits


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_packed_state_round_trips_and_is_dense(bits):
    torch.manual_seed(bits)
    lin = torch.nn.Linear(32, 4)
    q = QuantLinear.from_linear(lin, w_bits=bits)
    assert q.qweight.dtype == torch.uint8 and q.qweight.shape[1] == 32 * storage_bits(bits) // 8
    other = QuantLinear(32, 4, True, w_bits=bits)
    other.load_state_dict(q.state_dict())
    x = torch.randn(3, 32)
    assert torch.equal(other(x), q(x))


@pytest.mark.parametrize("asym", [False, True])
@pytest.mark.parametrize("group", [-1, 8])
def test_weight_error_is_within_half_a_step(asym, group):
    torch.manual_seed(0)
    lin = torch.nn.Linear(32, 6)
    q = QuantLinear.from_linear(lin, w_bits=4, group_size=group, w_asym=asym)
    w = q.dequantized_weight()
    step = q.scale.float().repeat_interleave(q.group_size, dim=1)
    assert ((w - lin.weight).abs() <= step / 2 + 1e-6).all()


def test_grid_points_are_reproduced_exactly():
    x = torch.tensor([[-7.0, -3.0, 0.0, 1.0, 7.0]])
    assert torch.equal(fake_quant(x, 4, asym=False), x)  # scale 1: every integer in -7..7 is on the grid


def test_straight_through_gradient():
    x = torch.randn(3, 8, requires_grad=True)
    fake_quant(x, 4, asym=True).sum().backward()
    interior = (x != x.amax(-1, keepdim=True)) & (x != x.amin(-1, keepdim=True))
    assert torch.equal(x.grad[interior], torch.ones_like(x)[interior])  # rounding passes gradients through


def test_rtn_on_tiny_more_bits_less_error(tiny):
    x = torch.tensor([tiny.encode("Question: Where did the author study?\nAnswer:")])
    ref = tiny.model(x).logits
    errs = {}
    for bits in (3, 4, 8):
        lm = tiny.clone()
        RTN({"w_bits": bits}).quantize(lm, None)
        errs[bits] = float((lm.model(x).logits - ref).abs().mean())
        assert abs(bits_per_weight(lm.model) - (bits + 16 / lm.config.hidden_size)) < 0.2
    assert errs[8] < errs[4] < errs[3]


def test_rtn_kv_and_activations(tiny):
    lm = tiny.clone()
    RTN({"w_bits": 8, "a_bits": 8, "kv_bits": 4, "kv_group_size": 16}).quantize(lm, None)
    assert lm.model.kv_bits() == 4
    cache = lm.model.new_cache()
    lm.model(torch.tensor([tiny.encode("Records:")]), cache=cache)
    k = cache.keys[0]
    # each group of 16 along head_dim holds at most 2**4 distinct values
    groups = k.reshape(*k.shape[:-1], -1, 16)
    assert max(len(torch.unique(g)) for g in groups.reshape(-1, 16)) <= 16
    assert cache.nbytes() == (k.numel() * 2 * lm.config.num_hidden_layers) * 4 // 8
