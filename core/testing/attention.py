"""Attention checks: shapes/dtypes (MHA, GQA), causality, padding, gradients, KV cache, exact limit."""

from __future__ import annotations

import torch

from ..builtins.attention import SDPAAttention
from ..install import install_attention
from ..kinds.attention import AttentionSite
from .base import CheckFailed, CheckSkipped, Subject, check
from .fixtures import (
    ATOL_MODULE,
    SEED,
    attn_ctx,
    attn_inputs,
    calibration_windows,
    close_logits,
    logits,
    max_diff,
    tiny,
    token_batch,
)
from .runs import calibrates, prefill_logits

D = 16
SITES = {"MHA": AttentionSite(layer=0, num_heads=4, num_kv_heads=4, head_dim=D, hidden_size=64, max_positions=2048),
         "GQA": AttentionSite(layer=0, num_heads=4, num_kv_heads=2, head_dim=D, hidden_size=64, max_positions=2048)}


def build(s: Subject, site: AttentionSite, **overrides) -> torch.nn.Module:
    torch.manual_seed(SEED)
    return s.method(**overrides).build(site)


def call(module, q, k, v, ctx) -> torch.Tensor:
    torch.manual_seed(SEED)  # methods that sample (LSH, random features) see the same draws every call
    return module(q, k, v, ctx)


def installed(s: Subject, lm=None, **overrides):
    """tiny (or ``lm``) with the method in every layer, calibrated when the method calibrates."""
    torch.manual_seed(SEED)
    lm = lm or tiny()
    method = s.method(**overrides)
    install_attention(lm.model, method)
    if calibrates(method):
        method.calibrate(lm, calibration_windows())
    return lm


@check("attention", "shapes", "output shape and dtype for MHA and GQA (float32, bfloat16), prefill and decode; "
       "recorded weights when asked")
def shapes(s: Subject) -> str:
    b, t = 2, 12
    for label, site in SITES.items():
        module = build(s, site)
        for dtype in (torch.float32, torch.bfloat16):
            m = module.to(dtype)
            for tq, offset in ((t, 0), (1, t - 1)):  # prefill, then one decoding step over 12 keys
                q, k, v = attn_inputs(b, site.num_heads, site.num_kv_heads, t, D, dtype)
                q = q[:, :, t - tq:]
                ctx = attn_ctx(b, tq, D)
                ctx.key_offset = offset
                ctx.query_positions = torch.arange(offset, offset + tq).expand(b, tq)
                with torch.no_grad():
                    out = call(m, q, k, v, ctx)
                want = (b, site.num_heads, tq, D)
                if tuple(out.shape) != want:
                    raise CheckFailed(f"{label} {dtype}: output shape {tuple(out.shape)}, expected B×Hq×T×D = {want}")
                if out.dtype != dtype:
                    raise CheckFailed(f"{label}: {dtype} inputs give a {out.dtype} output")
                if not torch.isfinite(out).all():
                    raise CheckFailed(f"{label} {dtype}: non-finite outputs")
        module = module.float()
        q, k, v = attn_inputs(b, site.num_heads, site.num_kv_heads, t, D)
        ctx = attn_ctx(b, t, D)
        ctx.need_weights = True
        with torch.no_grad():
            out_w = call(module, q, k, v, ctx)
            out = call(module, q, k, v, attn_ctx(b, t, D))
        w = ctx.weights.get(0)
        if w is None:
            raise CheckFailed(f"{label}: with ctx.need_weights the module does not call ctx.record(probs)")
        if tuple(w.shape) != (b, site.num_heads, t, t):
            raise CheckFailed(f"{label}: recorded attention weights have shape {tuple(w.shape)}, expected B×Hq×T×S")
        if max_diff(out_w, out) > ATOL_MODULE * max(1.0, float(out.abs().max())):
            raise CheckFailed(f"{label}: asking for the weights changes the output (max |Δ| {max_diff(out_w, out):.3g})")
    return "MHA and GQA, float32 and bfloat16, T=12 and T=1; weights recorded B×Hq×T×S"


@check("attention", "causal", "changing future tokens leaves earlier outputs unchanged (module and model)")
def causal(s: Subject) -> str:
    if not s.cls.causal:
        raise CheckSkipped("the method declares causal = False")
    b, t, cut = 2, 16, 10
    for label, site in SITES.items():
        module = build(s, site)
        q, k, v = attn_inputs(b, site.num_heads, site.num_kv_heads, t, D)
        q2, k2, v2 = q.clone(), k.clone(), v.clone()
        g = torch.Generator().manual_seed(SEED + 1)
        for x in (q2, k2, v2):
            x[:, :, cut:] = torch.randn(x[:, :, cut:].shape, generator=g) * 3
        with torch.no_grad():
            a = call(module, q, k, v, attn_ctx(b, t, D))[:, :, :cut]
            c = call(module, q2, k2, v2, attn_ctx(b, t, D))[:, :, :cut]
        d = max_diff(a, c)
        if d > ATOL_MODULE * max(1.0, float(a.abs().max())):
            raise CheckFailed(f"{label}: outputs at positions < {cut} change when later q/k/v change "
                              f"(max |Δ| {d:.3g}): the method sees the future")
    lm = installed(s)
    ids = token_batch(2, 24)
    ids2 = ids.clone()
    ids2[:, 16:] = torch.flip(ids2[:, 16:], dims=[1])
    a, c = logits(lm, ids)[:, :16], logits(lm, ids2)[:, :16]
    ok, d, _ = close_logits(c, a, rtol=1e-5)
    if not ok:
        raise CheckFailed(f"in the model, logits at positions < 16 change when later tokens change (max |Δ| {d:.3g})")
    return f"module (MHA, GQA) and model outputs before position {cut}/16 unchanged"


@check("attention", "padding", "masked (padding) keys do not change the outputs of real tokens")
def padding(s: Subject) -> str:
    b, t, pad = 2, 12, 4
    key_mask = torch.ones(b, t, dtype=torch.bool)
    key_mask[0, :pad] = False  # left padding of the first sequence
    for label, site in SITES.items():
        module = build(s, site)
        q, k, v = attn_inputs(b, site.num_heads, site.num_kv_heads, t, D)
        k2, v2 = k.clone(), v.clone()
        g = torch.Generator().manual_seed(SEED + 2)
        k2[0, :, :pad] = torch.randn(k2[0, :, :pad].shape, generator=g) * 10
        v2[0, :, :pad] = torch.randn(v2[0, :, :pad].shape, generator=g) * 10
        with torch.no_grad():
            a = call(module, q, k, v, attn_ctx(b, t, D, key_mask))
            c = call(module, q, k2, v2, attn_ctx(b, t, D, key_mask))
        if not (torch.isfinite(a[0, :, pad:]).all() and torch.isfinite(a[1]).all()):
            raise CheckFailed(f"{label}: non-finite outputs for real tokens with a padding mask")
        real_a = torch.cat([a[0, :, pad:].flatten(), a[1].flatten()])
        real_c = torch.cat([c[0, :, pad:].flatten(), c[1].flatten()])
        d = max_diff(real_a, real_c)
        if d > ATOL_MODULE * max(1.0, float(real_a.abs().max())):
            raise CheckFailed(f"{label}: changing padded keys/values changes real tokens' outputs (max |Δ| {d:.3g}): "
                              "ctx.key_mask (or ctx.allowed()) is not applied")
    return f"padded keys ignored (left padding of {pad}/{t}, MHA and GQA)"


@check("attention", "gradients", "gradients reach q, k, v and the module's own parameters, finite")
def gradients(s: Subject) -> str:
    b, t = 2, 12
    notes = []
    for label, site in SITES.items():
        module = build(s, site)
        module.train()
        q, k, v = attn_inputs(b, site.num_heads, site.num_kv_heads, t, D, requires_grad=True)
        out = call(module, q, k, v, attn_ctx(b, t, D))
        w = torch.randn(out.shape, generator=torch.Generator().manual_seed(SEED + 3))
        (out * w).sum().backward()
        for name, x in (("q", q), ("k", k), ("v", v)):
            if x.grad is None:
                raise CheckFailed(f"{label}: no gradient reaches {name}")
            if not torch.isfinite(x.grad).all():
                raise CheckFailed(f"{label}: the gradient of {name} is not finite")
            if not x.grad.abs().sum() > 0:
                raise CheckFailed(f"{label}: the gradient of {name} is zero")
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        for n, p in params:
            if p.grad is None:
                raise CheckFailed(f"{label}: trainable parameter {n!r} gets no gradient (make it a buffer or set "
                                  "requires_grad=False if it is not trained)")
            if not torch.isfinite(p.grad).all():
                raise CheckFailed(f"{label}: the gradient of parameter {n!r} is not finite")
        notes.append(f"{label}: q, k, v" + (f" + {len(params)} parameter(s)" if params else ""))
    return "; ".join(notes)


@check("attention", "kv_cache", "works with the KV cache; incremental decoding equals a full forward when the "
       "method claims it (incremental_exact)")
def kv_cache(s: Subject) -> str:
    lm = installed(s)
    ids = token_batch(1, 24, offset=5)
    full = logits(lm, ids)
    cache = lm.model.new_cache()
    parts = []
    with torch.no_grad():
        parts.append(lm.model(ids[:, :12], cache=cache).logits)
        parts.append(lm.model(ids[:, 12:16], cache=cache).logits)  # a chunk after the prefix
        for i in range(16, 24):
            parts.append(lm.model(ids[:, i:i + 1], cache=cache).logits)
    inc = torch.cat(parts, dim=1)
    if inc.shape != full.shape or not torch.isfinite(inc).all():
        raise CheckFailed(f"decoding with the cache gives shape {tuple(inc.shape)} (or non-finite logits)")
    if cache.length != 24:
        raise CheckFailed(f"the cache holds {cache.length} positions after 24 tokens")
    ok, d, allowed = close_logits(inc, full)
    if not s.cls.incremental_exact:
        return f"decodes with the cache (not claimed exact; max |Δ| to full forward {d:.3g})"
    if not ok:
        raise CheckFailed(f"incremental decoding (prefill 12, chunk 4, 8 single tokens) differs from the full "
                          f"forward: max |Δ| {d:.3g} > {allowed:.3g} (declare incremental_exact = False if that is "
                          "the method)")
    return f"incremental = full forward (max |Δ| {d:.2g})"


@check("attention", "exact_limit", "its declared exact limit case (exact_config) equals sdpa: full forward, "
       "padded batch, fixed-context prefill")
def exact_limit(s: Subject) -> str:
    cfg = s.cls.exact_config
    if cfg is None:
        raise CheckSkipped("the method declares no exact limit case (exact_config = None)")
    lm = installed(s, **cfg)
    ref = tiny()
    install_attention(ref.model, SDPAAttention())
    ids = token_batch(2, 32)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[0, :5] = False
    results = []
    for label, a, b in (("full forward", logits(lm, ids), logits(ref, ids)),
                        ("left-padded batch", logits(lm, ids, attention_mask=mask)[mask],
                         logits(ref, ids, attention_mask=mask)[mask]),
                        ("prefill + fork", prefill_logits(lm), prefill_logits(ref))):
        ok, d, allowed = close_logits(a, b)
        if not ok:
            raise CheckFailed(f"with exact_config {cfg}, {label} logits differ from sdpa: max |Δ| {d:.3g} > "
                              f"{allowed:.3g}")
        results.append(f"{label} {d:.2g}")
    return f"exact_config {cfg} = sdpa (max |Δ|: {', '.join(results)})"
