"""Turning documents into fixed-length training examples."""

from __future__ import annotations

import torch

from ..model.tokenizer import Tokenizer


def pack(docs: list[str], tokenizer: Tokenizer, seq_len: int) -> list[dict[str, torch.Tensor]]:
    """Greedily pack tokenized documents (each BOS ... EOS) into windows of ``seq_len``.

    Windows start at a document boundary and are padded at the end (labels -100 there), so the
    model always sees documents from their beginning, as it does at inference. Documents longer
    than a window are cut into window-sized pieces. No attention mask is needed: padding only
    ever follows the real tokens, which causal attention already keeps them from seeing (and the
    unmasked path is the fused, fast one).
    """
    eos = [tokenizer.eos_id] if tokenizer.eos_id is not None else []
    pieces: list[list[int]] = []
    for ids in tokenizer.encode_batch(docs):
        ids = ids + eos
        pieces += [ids[i:i + seq_len] for i in range(0, len(ids), seq_len)]
    out, cur = [], []
    for p in pieces:
        if len(cur) + len(p) > seq_len:
            out.append(_example(cur, seq_len, tokenizer.pad_id))
            cur = []
        cur = cur + p
    if cur:
        out.append(_example(cur, seq_len, tokenizer.pad_id))
    return out


def _example(ids: list[int], seq_len: int, pad: int) -> dict[str, torch.Tensor]:
    n = len(ids)
    x = torch.full((seq_len,), pad, dtype=torch.long)
    x[:n] = torch.tensor(ids)
    labels = x.clone()
    labels[n:] = -100
    return {"input_ids": x, "labels": labels}


def windows(ids: list[int], seq_len: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows of a token stream (the papers' perplexity convention): N×seq_len."""
    n = len(ids) // seq_len
    if max_windows is not None:
        n = min(n, max_windows)
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)
