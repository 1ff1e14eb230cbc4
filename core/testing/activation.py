"""Activation checks: shape/dtype, float64 gradcheck, the documented limit case, gated and ungated sites."""

from __future__ import annotations

import inspect

import torch
from torch.func import functional_call

from ..install import install_activation
from ..kinds.activation import MLPSite
from .base import CheckFailed, CheckSkipped, Subject, check
from .fixtures import SEED, logits, max_diff, random_lm, tiny, token_batch

SITES = {"gated": MLPSite(layer=0, hidden_size=64, intermediate_size=128, gated=True),
         "ungated": MLPSite(layer=0, hidden_size=64, intermediate_size=128, gated=False)}
SMALL = {"gated": MLPSite(layer=0, hidden_size=8, intermediate_size=16, gated=True),
         "ungated": MLPSite(layer=0, hidden_size=8, intermediate_size=16, gated=False)}
OUTPUT_DIM = 32  # width of the logits an ``output`` activation is fed in module-level checks
#: The limit case must hold to float32 rounding (relative to the largest output), in float32 and
#: float64 inputs alike (a reference ``f`` may compute in float32).
LIMIT_RTOL = 1e-6


def width(s: Subject, site: MLPSite) -> int:
    """The last dimension of the module's input: intermediate (act), hidden (mlp), logits (output)."""
    return {"act": site.intermediate_size, "mlp": site.hidden_size, "output": OUTPUT_DIM}[s.cls.replaces]


def build(s: Subject, site: MLPSite, config=None) -> torch.nn.Module:
    torch.manual_seed(SEED)
    method = s.cls(config) if config is not None else s.method()
    return method.build(site)


def inputs(shape, dtype=torch.float32, seed: int = SEED) -> torch.Tensor:
    """Random inputs kept at least 0.1 away from 0 (ReLU-like kinks stay out of finite differences)."""
    n = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (torch.sign(n) * (0.1 + n.abs())).to(dtype)


@check("activation", "shapes", "keeps shape and dtype (float32, bfloat16) at gated and ungated sites")
def shapes(s: Subject) -> str:
    if s.cls.replaces not in ("act", "mlp", "output"):
        raise CheckFailed(f"replaces = {s.cls.replaces!r}; must be 'act', 'mlp' or 'output'")
    for label, site in SITES.items():
        module = build(s, site)
        if not isinstance(module, torch.nn.Module):
            raise CheckFailed(f"build() returned {type(module).__name__}, not an nn.Module")
        for dtype in (torch.float32, torch.bfloat16):
            x = inputs((2, 5, width(s, site)), dtype)
            with torch.no_grad():
                y = module.to(dtype)(x)
            if y.shape != x.shape:
                raise CheckFailed(f"{label} site: input {tuple(x.shape)} gives output {tuple(y.shape)}")
            if y.dtype != dtype:
                raise CheckFailed(f"{label} site: {dtype} input gives a {y.dtype} output")
            if not torch.isfinite(y).all():
                raise CheckFailed(f"{label} site {dtype}: non-finite outputs")
    return f"replaces {s.cls.replaces!r}: shape and dtype kept (float32, bfloat16), gated and ungated"


def jitter(p: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Parameters moved ~1% off their initialisation, so gradcheck runs at a generic point: inits
    often sit exactly on a kink (e.g. a safe Padé denominator |b·x| at b = 0), where finite
    differences and any subgradient convention disagree."""
    n = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
    return p * (1 + 0.02 * n) + 0.01 * n


@check("activation", "gradcheck", "gradients of input and parameters pass torch.autograd.gradcheck in float64 "
       "(at inputs and parameters away from kinks)")
def gradcheck(s: Subject) -> str:
    notes = []
    for label, site in SMALL.items():
        module = build(s, site).double()
        names = [n for n, p in module.named_parameters() if p.requires_grad]
        g = torch.Generator().manual_seed(SEED + 5)
        params = [jitter(p.detach(), g).requires_grad_(True) for n, p in module.named_parameters() if p.requires_grad]
        x = inputs((2, 3, width(s, site)), torch.float64).requires_grad_(True)

        def f(x_, *ps, module=module, names=names):
            torch.manual_seed(SEED)
            return functional_call(module, dict(zip(names, ps)), (x_,))

        try:
            ok = torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise CheckFailed(f"{label} site: gradcheck fails: {first}") from None
        if not ok:
            raise CheckFailed(f"{label} site: gradcheck fails")
        notes.append(label)
    return f"input + {len(params)} parameter tensor(s), {' and '.join(notes)} sites"


@check("activation", "limit_case", "its documented limit case (limit_case()) is computed exactly")
def limit_case(s: Subject) -> str:
    lc = s.cls.limit_case()
    if lc is None:
        raise CheckSkipped("the method declares no limit case (limit_case() returns None)")
    config, f = lc
    worst = 0.0
    for label, site in SITES.items():
        module = build(s, site, config)
        for dtype in (torch.float32, torch.float64):
            x = inputs((2, 5, width(s, site)), dtype, seed=SEED + 1) * 3
            with torch.no_grad():
                m = module.to(dtype)
                y = m(x)
                want = f(m, x) if len(inspect.signature(f).parameters) == 2 else f(x)
            d = max_diff(y, want)
            tol = LIMIT_RTOL * max(1.0, float(want.abs().max()))
            if d > tol:
                raise CheckFailed(f"{label} site, {dtype}: with {config} the module differs from its limit case "
                                  f"by {d:.3g} (> {tol:.2g})")
            worst = max(worst, d)
    return f"config {config}: max |Δ| {worst:.2g} (float32, float64)"


@check("activation", "sites", "fits gated (tiny) and ungated MLP sites: the model runs and trains through it")
def sites(s: Subject) -> str:
    notes = []
    for label, lm in (("gated (tiny)", tiny()), ("ungated", random_lm(gated=False))):
        torch.manual_seed(SEED)
        install_activation(lm.model, s.method())
        ids = token_batch(2, 16)
        base = logits(lm, ids)
        if base.shape != (2, 16, lm.config.vocab_size) or not torch.isfinite(base).all():
            raise CheckFailed(f"{label}: the model gives logits of shape {tuple(base.shape)} (or non-finite)")
        probs = torch.softmax(base, -1)
        if not torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-4):
            raise CheckFailed(f"{label}: the output distribution does not normalise")
        lm.model.train()
        out = lm.model(ids).logits
        loss = torch.nn.functional.cross_entropy(out[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        blk = lm.model.blocks[0]
        weights = [p for n, p in blk.named_parameters() if n.startswith("mlp.") and p.requires_grad]
        if not weights or any(p.grad is None for p in weights):
            raise CheckFailed(f"{label}: parameters of the MLP get no gradient through the activation")
        if any(not torch.isfinite(p.grad).all() for p in lm.model.parameters() if p.grad is not None):
            raise CheckFailed(f"{label}: non-finite gradients")
        notes.append(label)
    return f"runs and back-propagates at {' and '.join(notes)} sites"
