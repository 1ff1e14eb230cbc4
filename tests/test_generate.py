"""KV-cached generation: greedy equals the uncached argmax loop; sampling is seeded."""

from __future__ import annotations

import torch

from splice.model import Decoder, DecoderConfig, generate


def small_model(seed: int = 0) -> Decoder:
    torch.manual_seed(seed)
    cfg = DecoderConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2)
    return Decoder(cfg).eval()


def test_greedy_equals_uncached_argmax_loop():
    m = small_model()
    x = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(0))
    got = generate(m, x, 7)
    ref = x
    with torch.no_grad():
        for _ in range(7):
            ref = torch.cat([ref, m(ref).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(got, ref)


def test_left_padded_batch_generates_like_single_sequences():
    m = small_model(1)
    a = torch.randint(0, 50, (1, 6), generator=torch.Generator().manual_seed(1))
    b = torch.randint(0, 50, (1, 3), generator=torch.Generator().manual_seed(2))
    batch = torch.zeros(2, 6, dtype=torch.long)
    batch[0], batch[1, 3:] = a[0], b[0]
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, :3] = False
    got = generate(m, batch, 5, attention_mask=mask)
    assert torch.equal(got[0, 6:], generate(m, a, 5)[0, 6:])
    assert torch.equal(got[1, 6:], generate(m, b, 5)[0, 3:])


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    m = small_model(2)
    x = torch.randint(0, 50, (1, 4), generator=torch.Generator().manual_seed(3))
    s1 = generate(m, x, 10, temperature=1.0, generator=torch.Generator().manual_seed(7))
    s2 = generate(m, x, 10, temperature=1.0, generator=torch.Generator().manual_seed(7))
    assert torch.equal(s1, s2)
    assert torch.equal(generate(m, x, 10, temperature=0.7, top_k=1), generate(m, x, 10))
    # top_p tiny keeps only the most likely token: also greedy
    assert torch.equal(generate(m, x, 10, temperature=1.0, top_p=1e-6,
                                generator=torch.Generator().manual_seed(0)), generate(m, x, 10))


def test_generation_stops_at_eos():
    m = small_model(3)
    x = torch.randint(0, 50, (1, 4), generator=torch.Generator().manual_seed(4))
    first = int(generate(m, x, 1)[0, -1])
    out = generate(m, x, 10, eos_ids=[first])
    assert out.shape[1] == 5  # stopped right after emitting eos
