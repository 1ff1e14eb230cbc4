"""The reference decoder for the Llama family, built from named sites plugins can replace.

Sites (all plain attributes, so plugins swap modules instead of monkeypatching):

    embed                      token embedding
    blocks[i].attn_norm        RMSNorm before attention
    blocks[i].attn.q/k/v/o     the attention projections (nn.Linear or a quantized stand-in)
    blocks[i].attn.kv_path     (q, k, v) -> (q, k, v) after RoPE, before the cache: KV quantizers
                               and KV transforms live here
    blocks[i].attn.core        the attention method: core(q, k, v, ctx) -> out
    blocks[i].mlp_norm         RMSNorm before the MLP
    blocks[i].mlp              the MLP; .gate/.up/.down linears and .act (elementwise activation)
    norm, lm_head              final norm and output projection (tied to embed when configured)
    output_act                 logits -> logits whose softmax is the output distribution (identity
                               for softmax; output normalisers such as StableMax go here)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .cache import KVCache
from .config import DecoderConfig
from .context import AttnContext, dense_attention
from .rope import Rotary, apply_rotary


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def reset_parameters(self) -> None:
        torch.nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


class SDPA(nn.Module):
    """Exact softmax attention via torch's fused kernel (the core's default ``sdpa`` method)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttnContext) -> torch.Tensor:
        if ctx.need_weights:
            out, probs = dense_attention(q, k, v, ctx, return_probs=True)
            ctx.record(probs)
            return out
        t, s = q.shape[-2], k.shape[-2]
        groups = q.shape[1] // k.shape[1]
        plain_causal = ctx.causal and ctx.key_mask is None and not ctx.sliding_window and t == s
        if plain_causal or (t == 1 and ctx.key_mask is None and not ctx.sliding_window):
            return F.scaled_dot_product_attention(q, k, v, is_causal=plain_causal and t > 1,
                                                  scale=ctx.scale, enable_gqa=groups > 1)
        mask = ctx.allowed(t, s, q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=ctx.scale, enable_gqa=groups > 1)
        if mask is not None:  # queries that see no key at all (left padding) give 0, not NaN
            out = out.masked_fill(~mask.any(-1, keepdim=True), 0.0)
        return out


class IdentityKV(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        return q, k, v


def activation_module(name: str) -> nn.Module:
    table = {"silu": nn.SiLU, "swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU,
             "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh")}
    if name not in table:
        raise ValueError(f"hidden_act {name!r} is not supported (supported: {', '.join(table)})")
    return table[name]()


class Attention(nn.Module):
    def __init__(self, cfg: DecoderConfig, layer: int) -> None:
        super().__init__()
        hd, hq, hkv = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
        assert hd is not None and hkv is not None
        self.layer, self.head_dim, self.n_heads, self.n_kv_heads = layer, hd, hq, hkv
        self.q = nn.Linear(cfg.hidden_size, hq * hd, bias=cfg.attention_bias)
        self.k = nn.Linear(cfg.hidden_size, hkv * hd, bias=cfg.attention_bias)
        self.v = nn.Linear(cfg.hidden_size, hkv * hd, bias=cfg.attention_bias)
        self.o = nn.Linear(hq * hd, cfg.hidden_size, bias=False)
        self.kv_path: nn.Module = IdentityKV()
        self.core: nn.Module = SDPA()

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, ctx: AttnContext) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        q, k, v = self.kv_path(q, k, v)
        if ctx.cache is not None:
            k, v = ctx.cache.append(self.layer, k, v)
        out = self.core(q, k, v, ctx)
        return self.o(out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        h, i = cfg.hidden_size, cfg.intermediate_size
        self.gated = cfg.mlp_gated
        self.gate = nn.Linear(h, i, bias=cfg.mlp_bias) if self.gated else None
        self.up = nn.Linear(h, i, bias=cfg.mlp_bias)
        self.down = nn.Linear(i, h, bias=cfg.mlp_bias)
        self.act: nn.Module = activation_module(cfg.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            return self.down(self.act(self.gate(x)) * self.up(x))
        return self.down(self.act(self.up(x)))


class Block(nn.Module):
    def __init__(self, cfg: DecoderConfig, layer: int) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.attn = Attention(cfg, layer)
        self.mlp_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp: nn.Module = MLP(cfg)

    def forward(self, x, cos, sin, ctx: AttnContext) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, ctx)
        return x + self.mlp(self.mlp_norm(x))


@dataclass
class DecoderOutput:
    logits: torch.Tensor  # B×T×V (float32)
    hidden: list[torch.Tensor] = field(default_factory=list)  # residual stream after each block
    attentions: dict[int, torch.Tensor] = field(default_factory=dict)


class Decoder(nn.Module):
    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.embed.weight
        self.output_act: nn.Module = nn.Identity()  # logits -> values whose softmax is the output distribution
        self.rotary = Rotary(cfg)
        self.scale = cfg.head_dim ** -0.5  # type: ignore[operator]

    # -- sites ---------------------------------------------------------------------------------
    def linear_sites(self) -> dict[str, nn.Module]:
        """Every linear inside the blocks, by dotted name (``blocks.0.attn.q`` ...)."""
        out: dict[str, nn.Module] = {}
        for i, blk in enumerate(self.blocks):
            for n in ("q", "k", "v", "o"):
                out[f"blocks.{i}.attn.{n}"] = getattr(blk.attn, n)
            mlp = blk.mlp
            for n in ("gate", "up", "down"):
                if isinstance(getattr(mlp, n, None), nn.Module):
                    out[f"blocks.{i}.mlp.{n}"] = getattr(mlp, n)
        return out

    def replace(self, name: str, module: nn.Module) -> None:
        """Replace the submodule at dotted ``name`` (e.g. ``blocks.3.mlp.down``)."""
        parent_name, _, attr = name.rpartition(".")
        parent = self.get_submodule(parent_name) if parent_name else self
        setattr(parent, attr, module)

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    # -- forward -------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                positions: torch.Tensor | None = None, cache: KVCache | None = None,
                need_weights: bool = False, output_hidden: bool = False) -> DecoderOutput:
        b, t = input_ids.shape
        offset = cache.length if cache is not None else 0
        key_mask = None
        if attention_mask is not None or (cache is not None and cache.key_mask is not None):
            step = attention_mask if attention_mask is not None else torch.ones(b, t, dtype=torch.bool)
            step = step.to(input_ids.device).bool()
            key_mask = cache.extend_mask(step) if cache is not None else step
            if bool(key_mask.all()):
                key_mask = None  # nothing padded: let attention take its fast path
        if positions is None:
            if key_mask is not None:  # left padding: real tokens count from 0
                full = key_mask.long().cumsum(-1) - 1
                positions = full[:, -t:].clamp(min=0)
            else:
                positions = torch.arange(offset, offset + t, device=input_ids.device).expand(b, t)
        x = self.embed(input_ids)
        cos, sin = self.rotary.cos_sin(positions, x.dtype)
        window = self.config.sliding_window if self.config.use_sliding_window is not False else None
        ctx = AttnContext(layer=0, scale=self.scale, query_positions=positions, key_offset=offset,
                          key_mask=key_mask, causal=True, sliding_window=window, cache=cache,
                          need_weights=need_weights)
        hidden = []
        for i, blk in enumerate(self.blocks):
            ctx.layer = i
            x = blk(x, cos, sin, ctx)
            if output_hidden:
                hidden.append(x)
        logits = self.output_act(self.lm_head(self.norm(x)).float())
        return DecoderOutput(logits=logits, hidden=hidden, attentions=ctx.weights)

    def new_cache(self) -> KVCache:
        cache = KVCache(len(self.blocks))
        cache.kv_bits = self.kv_bits()
        return cache

    def kv_bits(self) -> float:
        """Bits per cached element as the KV path stores them (a KV quantizer's ``bits``)."""
        native = torch.finfo(self.dtype).bits
        return float(min(getattr(b.attn.kv_path, "bits", native) for b in self.blocks))

    @torch.no_grad()
    def prefill(self, context_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> KVCache:
        """The fixed-context workflow: run a long context once, let every attention module process
        its layer's cached prefix offline (``on_prefix``), freeze it. Queries then run on
        ``cache.fork()`` so the prefix is shared, never recomputed or modified."""
        cache = self.new_cache()
        self(context_ids, attention_mask=attention_mask, cache=cache)
        for i, blk in enumerate(self.blocks):
            hook = getattr(blk.attn.core, "on_prefix", None)
            if hook is not None:
                hook(cache.keys[i], cache.values[i], cache.layer_state[i], i)
        return cache.freeze()
