"""Running the decoder one block at a time on calibration windows.

Shared by block-wise calibration methods (GPTQ in QuaRot, FlatQuant's block MSE, OmniQuant...).
"""

from __future__ import annotations

import torch
from splice.errors import DataError
from splice.model.context import AttnContext


def check_calibration(lm, data: torch.Tensor, owner: str) -> torch.Tensor:
    if not isinstance(data, torch.Tensor) or data.dim() != 2 or data.dtype not in (torch.long, torch.int32, torch.int64):
        raise DataError(f"{owner}: calibration data must be an N x T tensor of token ids "
                        f"(got {getattr(data, 'shape', type(data).__name__)})")
    n, t = data.shape
    if n < 1 or t < 2:
        raise DataError(f"{owner}: calibration data of shape {tuple(data.shape)} is shorter than one sequence "
                        "of at least 2 tokens")
    if t > lm.config.max_position_embeddings:
        raise DataError(f"{owner}: calibration sequences of {t} tokens exceed the model's "
                        f"{lm.config.max_position_embeddings} positions")
    if int(data.max()) >= lm.config.vocab_size or int(data.min()) < 0:
        raise DataError(f"{owner}: calibration token ids fall outside the vocabulary (0..{lm.config.vocab_size - 1})")
    return data.long()


class BlockRunner:
    """Calls ``model.blocks[i]`` directly on hidden states of windows of length T (batch b)."""

    def __init__(self, model, seq_len: int) -> None:
        self.model = model
        self.seq_len = seq_len
        self._rope: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _cos_sin(self, b: int, dtype: torch.dtype):
        if b not in self._rope:
            pos = torch.arange(self.seq_len, device=self.model.device).expand(b, self.seq_len)
            cos, sin = self.model.rotary.cos_sin(pos, dtype)
            self._rope[b] = (pos, cos, sin)
        return self._rope[b]

    def __call__(self, i: int, x: torch.Tensor) -> torch.Tensor:
        pos, cos, sin = self._cos_sin(x.shape[0], x.dtype)
        cfg = self.model.config
        window = cfg.sliding_window if cfg.use_sliding_window is not False else None
        ctx = AttnContext(layer=i, scale=self.model.scale, query_positions=pos, causal=True, sliding_window=window)
        return self.model.blocks[i](x, cos, sin, ctx)

    @torch.no_grad()
    def embed(self, data: torch.Tensor) -> torch.Tensor:
        return self.model.embed(data.to(self.model.device))
