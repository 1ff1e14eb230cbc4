"""What checks run on: the embedded ``tiny`` model (loaded once, handed out as clones), small random
decoders (MHA, ungated MLP), fixed token batches, calibration windows, the authors task, and the
tolerances the suite states."""

from __future__ import annotations

import functools
import os
import random
from typing import Any

import torch

from ..model import Decoder, DecoderConfig, LanguageModel
from ..model.context import AttnContext

# -- what the checks run on ---------------------------------------------------------------------
#: The model checks run on; SPLICE_CHECK_MODEL points the suite at another small checkpoint.
MODEL_SOURCE = os.environ.get("SPLICE_CHECK_MODEL", "tiny")
SEED = 0

# -- tolerances (stated, so a failure message can quote them) --------------------------------------
#: Module-level comparisons that should be exact up to float32 rounding (causality, padding).
ATOL_MODULE = 1e-5
#: Logits of a limit case against its reference (sdpa, the unquantized model): float32 rounding
#: through 4 layers, relative to the largest logit.
RTOL_LOGITS = 1e-4
#: An unlearner may raise the mean per-token answer NLL of the retain set by at most this many
#: nats (tiny, forget 1 author, the suite's short run) ...
RETAIN_TOLERANCE = 0.25
#: ... while raising the forget set's by more than this.
FORGET_MIN_RISE = 0.05

#: Config values the suite applies to keep a kind's checks within seconds on tiny, where the
#: method's Config has that field; a method's own ``conformance_config`` overrides these.
SUITE_OPTIONS: dict[str, dict[str, Any]] = {
    "unlearner": {"epochs": 3},
}

#: Small settings of the built-ins a plugin is composed with in the ``composes`` check.
COMPOSE_PARTNERS: dict[str, tuple[str, dict[str, Any]]] = {
    "attention": ("sdpa", {}),
    "activation": ("silu", {}),
    "unlearner": ("ga", {"epochs": 1}),
    "quantizer": ("rtn", {"w_bits": 4}),
    "evaluator": ("perplexity", {"max_windows": 2, "context": 64}),
}
CALIBRATION = {"samples": 4, "seq_len": 64, "seed": 0}


@functools.lru_cache(maxsize=2)
def _load(source: str) -> LanguageModel:
    from ..model import load

    lm = load(source)
    lm.model.eval().requires_grad_(False)
    return lm


def tiny() -> LanguageModel:
    """A fresh copy of the check model (loaded once per process)."""
    lm = _load(MODEL_SOURCE).clone()
    lm.model.requires_grad_(True)
    return lm


def random_lm(num_heads: int = 4, num_kv_heads: int = 4, gated: bool = True, hidden: int = 64,
              layers: int = 2, seed: int = SEED) -> LanguageModel:
    """A small random decoder with the check model's tokenizer (MHA / GQA, gated / ungated MLP)."""
    base = _load(MODEL_SOURCE)
    cfg = DecoderConfig(vocab_size=base.config.vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                        num_hidden_layers=layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
                        max_position_embeddings=base.config.max_position_embeddings, tie_word_embeddings=True,
                        mlp_gated=gated, bos_token_id=base.config.bos_token_id, eos_token_id=base.config.eos_token_id,
                        pad_token_id=base.config.pad_token_id)
    torch.manual_seed(seed)
    model = Decoder(cfg)
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(m.weight, std=0.1)
    return LanguageModel(model.eval(), base.tokenizer, "random")


@functools.lru_cache(maxsize=4)
def _corpus_ids(split: str) -> tuple[int, ...]:
    from ..data.synthetic import documents

    lm = _load(MODEL_SOURCE)
    docs = documents(split)[:60]
    return tuple(lm.encode("\n\n".join(docs)))


def token_batch(batch: int = 2, length: int = 48, split: str = "eval", offset: int = 0) -> torch.Tensor:
    """B×T windows of real held-out text (so logits are meaningful), always the same."""
    ids = _corpus_ids(split)
    need = batch * length
    start = offset * need
    if start + need > len(ids):
        raise RuntimeError("check corpus too short")
    return torch.tensor(ids[start:start + need], dtype=torch.long).view(batch, length)


def calibration_windows() -> torch.Tensor:
    """What compose would pass a quantizer/attention ``calibrate`` (CALIBRATION, tiny-calib text)."""
    ids = _corpus_ids("calib")
    rng = random.Random(CALIBRATION["seed"])
    t = CALIBRATION["seq_len"]
    starts = [rng.randrange(0, len(ids) - t) for _ in range(CALIBRATION["samples"])]
    return torch.tensor([ids[s:s + t] for s in starts], dtype=torch.long)


@functools.lru_cache(maxsize=1)
def _authors_task():
    from ..data.examples import authors_task

    return authors_task(1)


def unlearn_task(retain: int = 200, reference: LanguageModel | None = None):
    """The tiny's authors task, forget 1% (one author, 20 QA pairs), the retain set cut to ``retain``."""
    from ..kinds.unlearner import UnlearnTask

    t = _authors_task()
    rng = random.Random(SEED)
    kept = rng.sample(t.retain, min(retain, len(t.retain)))
    return UnlearnTask(forget=list(t.forget), retain=kept, reference=reference, name=t.name, meta=dict(t.meta))


def attn_inputs(b: int = 2, hq: int = 4, hkv: int = 2, t: int = 12, d: int = 16, dtype=torch.float32,
                seed: int = SEED, requires_grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, d, generator=g).to(dtype) for h in (hq, hkv, hkv))
    if requires_grad:
        for x in (q, k, v):
            x.requires_grad_(True)
    return q, k, v


def attn_ctx(b: int, t: int, d: int, key_mask: torch.Tensor | None = None, causal: bool = True) -> AttnContext:
    return AttnContext(layer=0, scale=d ** -0.5, query_positions=torch.arange(t).expand(b, t), key_offset=0,
                       key_mask=key_mask, causal=causal)


@torch.no_grad()
def logits(lm: LanguageModel, ids: torch.Tensor | None = None, **kw) -> torch.Tensor:
    lm.model.eval()
    return lm.model(token_batch() if ids is None else ids, **kw).logits


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def close_logits(a: torch.Tensor, b: torch.Tensor, rtol: float = RTOL_LOGITS) -> tuple[bool, float, float]:
    """(within tolerance, max |Δ|, allowed) with the allowance relative to the largest logit."""
    allowed = rtol * max(1.0, float(b.abs().max()))
    d = max_diff(a, b)
    return d <= allowed, d, allowed


def state_snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed_tensors(before: dict[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    after = module.state_dict()
    out = [k for k in before if k not in after or before[k].shape != after[k].shape
           or not torch.equal(before[k], after[k])]
    return out + [k for k in after if k not in before]
