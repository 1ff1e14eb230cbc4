"""KV-cached generation: greedy or sampling (temperature, top-k, top-p)."""

from __future__ import annotations

import torch

from .decoder import Decoder


@torch.no_grad()
def generate(model: Decoder, input_ids: torch.Tensor, max_new_tokens: int, *,
             attention_mask: torch.Tensor | None = None, temperature: float = 0.0, top_k: int = 0,
             top_p: float = 1.0, eos_ids: list[int] | None = None, generator: torch.Generator | None = None,
             cache=None) -> torch.Tensor:
    """Return B×(T+new) ids. temperature 0 is greedy. Finished rows keep emitting the first eos id.

    With ``cache`` (e.g. a fork of a frozen fixed context), ``input_ids`` are the new tokens only.
    """
    eos = set(eos_ids or [])
    cache = cache if cache is not None else model.new_cache()
    out = input_ids
    step_ids, step_mask = input_ids, attention_mask
    done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        logits = model(step_ids, attention_mask=step_mask, cache=cache).logits[:, -1]
        nxt = _pick(logits, temperature, top_k, top_p, generator)
        if eos:
            fill = next(iter(eos))
            nxt = torch.where(done, torch.full_like(nxt, fill), nxt)
            done |= torch.isin(nxt, torch.tensor(sorted(eos), device=nxt.device))
        out = torch.cat([out, nxt[:, None]], dim=1)
        step_ids = nxt[:, None]
        step_mask = None if step_mask is None else torch.ones_like(step_ids, dtype=torch.bool)
        if eos and bool(done.all()):
            break
    return out


def _pick(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
          generator: torch.Generator | None) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, -1)
        drop = probs.cumsum(-1) - probs > top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
