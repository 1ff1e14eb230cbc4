"""Putting attention and activation methods into a model's sites (used by compose and by load)."""

from __future__ import annotations

from .kinds.activation import ActivationMethod, MLPSite
from .kinds.attention import AttentionMethod, AttentionSite
from .model.decoder import Decoder


def attention_sites(model: Decoder) -> list[AttentionSite]:
    c = model.config
    return [AttentionSite(layer=i, num_heads=c.num_attention_heads, num_kv_heads=c.num_key_value_heads,
                          head_dim=c.head_dim, hidden_size=c.hidden_size, max_positions=c.max_position_embeddings)
            for i in range(len(model.blocks))]  # type: ignore[arg-type]


def mlp_sites(model: Decoder) -> list[MLPSite]:
    c = model.config
    return [MLPSite(layer=i, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                    gated=c.mlp_gated, bias=c.mlp_bias) for i in range(len(model.blocks))]


def install_attention(model: Decoder, method: AttentionMethod) -> None:
    for site, blk in zip(attention_sites(model), model.blocks):
        blk.attn.core = method.build(site).to(model.device)


def install_activation(model: Decoder, method: ActivationMethod) -> None:
    if method.replaces == "output":
        model.output_act = method.build(mlp_sites(model)[-1]).to(model.device)
        return
    for site, blk in zip(mlp_sites(model), model.blocks):
        module = method.build(site).to(model.device)
        if method.replaces == "mlp":
            blk.mlp = module
        else:
            blk.mlp.act = module
