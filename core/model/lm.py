"""A decoder together with its tokenizer and where it came from: what methods operate on."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .decoder import Decoder
from .tokenizer import Tokenizer


@dataclass
class LanguageModel:
    model: Decoder
    tokenizer: Tokenizer
    source: str = ""

    @property
    def config(self):
        return self.model.config

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens)

    def pad_batch(self, seqs: list[list[int]], left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad token id lists to a B×T tensor and its mask (True = real token)."""
        t = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), t), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros(len(seqs), t, dtype=torch.bool)
        for i, s in enumerate(seqs):
            sl = slice(t - len(s), t) if left else slice(0, len(s))
            ids[i, sl] = torch.tensor(s, dtype=torch.long)
            mask[i, sl] = True
        return ids.to(self.model.device), mask.to(self.model.device)

    @torch.no_grad()
    def token_logprobs(self, seqs: list[list[int]]) -> list[torch.Tensor]:
        """log p(token_t | tokens_<t) for t >= 1 of each sequence (length len(s)-1 each)."""
        ids, mask = self.pad_batch(seqs)
        logits = self.model(ids, attention_mask=mask).logits
        lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        return [lp[i, : len(s) - 1].cpu() for i, s in enumerate(seqs)]

    def clone(self) -> "LanguageModel":
        """A deep copy of the model (the tokenizer is immutable and shared)."""
        import copy

        return LanguageModel(copy.deepcopy(self.model), self.tokenizer, self.source)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of next-token NLL per sequence; labels use -100 for positions that do not count."""
    lp = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none")
    return lp.sum(-1)
