"""``quarot``: rotate the residual stream with a random Hadamard matrix folded into the weights, add
online Hadamards where a fold is impossible, then quantize weights (GPTQ or RTN), activations and
the KV cache. QuaRot: Outlier-Free 4-Bit Inference in Rotated LLMs (Ashkboos et al., arXiv 2404.00456).

What is folded and what runs online (``x -> x @ M`` with M orthogonal throughout):

- norms: each RMSNorm's weight is folded into the linears that read it (q, k, v; gate, up;
  lm_head) and set to 1, so the norm commutes with any rotation of its input;
- residual stream: Q = diag(random signs) H / sqrt(n) (or a random orthogonal matrix): the
  embedding becomes E Q, readers of the stream W Q, writers (o, down) Q^T W; tied embeddings are
  untied because the head absorbs the final norm;
- values: a head_dim Hadamard folded into v's output rows, matched by o's input columns;
- o input: online rotation across heads (A), so o sees kron(A, H_d) overall;
- down input: online Hadamard of the intermediate size, folded into down's input columns;
- queries and keys: online Hadamard after RoPE (q k^T unchanged) before the keys are quantized.

In full precision (all bits 16) every step is exact: logits equal the original model's.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator
from splice.blockwise import check_calibration
from splice.errors import ConfigError, DataError, IncompatibleError
from splice.gptq import rtn, sequential_gptq
from splice.kinds.quantizer import QuantizerMethod
from splice.method import MethodConfig, Paper
from splice.quant import FULL, QuantLinear
from torch import nn

from .modules import QuaRotKV, RotatedLinear
from .rotations import (
    HeadRotation,
    Rotation,
    hadamard_rotation_matrix,
    has_hadamard,
    random_orthogonal,
    random_signs,
)


def _bits(v: int, lo: int, field: str) -> int:
    if v != FULL and not lo <= v <= 8:
        raise ValueError(f"{field} must be {lo}..8, or 16 for full precision")
    return v


class QuaRotConfig(MethodConfig):
    """Defaults are QuaRot's W4A4KV4 setting (paper Sec. 5; ``main.py --rotate --w_bits 4 --a_bits 4
    --k_bits 4 --v_bits 4 --w_clip``): GPTQ weights, per-channel symmetric; per-token symmetric
    activations clipped at 0.9; asymmetric KV per head (group 128 = LLaMA's head_dim) clipped at 0.95."""

    w_bits: int = Field(4, description="weight bits (2..8; 16 = keep rotated weights in full precision)")
    w_method: Literal["gptq", "rtn"] = Field("gptq", description="GPTQ (needs calibration data) or round-to-nearest")
    w_group_size: int = Field(-1, description="weights per scale along the input dim; -1 = per output channel")
    w_asym: bool = False
    w_clip: bool = Field(True, description="search each channel's clipping range for least L2.4 error")
    a_bits: int = Field(4, description="activation bits, per token (2..8; 16 = off)")
    a_asym: bool = False
    a_clip_ratio: float = Field(0.9, gt=0, le=1)
    k_bits: int = Field(4, description="key-cache bits (2..8; 16 = off)")
    v_bits: int = Field(4, description="value-cache bits (2..8; 16 = off)")
    kv_group_size: int = Field(-1, description="KV elements per scale along head_dim; -1 = the whole head")
    kv_asym: bool = True
    kv_clip_ratio: float = Field(0.95, gt=0, le=1)
    rotation: Literal["hadamard", "random"] = Field(
        "hadamard", description="residual rotation: random Hadamard (QuaRot) or random orthogonal")
    seed: int = Field(0, description="seed of the random signs / random orthogonal matrices")
    percdamp: float = Field(0.01, gt=0, description="GPTQ dampening, fraction of the mean Hessian diagonal")
    act_order: bool = Field(False, description="GPTQ: quantize columns in order of decreasing Hessian diagonal")
    batch_size: int = Field(4, gt=0, description="calibration windows per forward pass (memory only)")

    @field_validator("w_bits")
    @classmethod
    def _w(cls, v: int) -> int:
        return _bits(v, 2, "w_bits")

    @field_validator("a_bits", "k_bits", "v_bits")
    @classmethod
    def _a(cls, v: int, info) -> int:
        return _bits(v, 2, info.field_name)


SITES = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down")


class QuaRot(QuantizerMethod):
    """QuaRot: random Hadamard rotations folded into the weights, online Hadamards, then RTN/GPTQ."""

    name = "quarot"
    Config = QuaRotConfig
    paper = Paper(title="QuaRot: Outlier-Free 4-Bit Inference in Rotated LLMs", arxiv="2404.00456",
                  claim="rotating the residual stream removes outliers: W4A4KV4 far better than RTN "
                        "(LLaMA-2-7B WikiText-2 PPL 6.10 vs 5.47 FP16); exact in full precision")
    full_precision_config: ClassVar[dict[str, Any]] = {"w_bits": 16, "a_bits": 16, "k_bits": 16, "v_bits": 16}
    supported_weight_bits: ClassVar[tuple[int, ...]] = (2, 3, 4, 5, 6, 7, 8, 16)

    # -- structure ------------------------------------------------------------------------------
    def _check(self, lm) -> None:
        cfg = lm.config
        bad = {n: type(m).__name__ for n, m in lm.model.linear_sites().items() if type(m) is not nn.Linear}
        if bad:
            name, kind = next(iter(bad.items()))
            raise IncompatibleError(f"quarot: linear site {name} is already a {kind}; QuaRot rotates plain "
                                    "nn.Linear weights (apply it once, before any other weight transform)")
        if self.config.kv_group_size not in (-1, 0) and cfg.head_dim % self.config.kv_group_size:
            raise ConfigError(f"quarot: kv_group_size {self.config.kv_group_size} does not divide head_dim {cfg.head_dim}")
        if self.config.w_group_size not in (-1, 0):
            for n in (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads * cfg.head_dim):
                if n % self.config.w_group_size:
                    raise ConfigError(f"quarot: w_group_size {self.config.w_group_size} does not divide {n}")

    def _seeds(self) -> dict[str, int]:
        s = self.config.seed
        return {"residual": s, "heads": s + 1, "head_dim": s + 2, "intermediate": s + 3}

    def _online(self, cfg) -> tuple[Rotation, HeadRotation, Rotation, Rotation]:
        """(down-input rotation, o-input head rotation, v/o head_dim rotation, q/k rotation)."""
        seeds = self._seeds()
        return (Rotation(cfg.intermediate_size, "hadamard", seeds["intermediate"]),
                HeadRotation(cfg.num_attention_heads, cfg.head_dim, "hadamard", seeds["heads"]),
                Rotation(cfg.head_dim, "hadamard", seeds["head_dim"]),
                Rotation(cfg.head_dim, "hadamard", seeds["head_dim"]))

    def residual_rotation(self, n: int) -> torch.Tensor:
        """Q (float64): diag(random signs) H^T / sqrt(n), or random orthogonal (no Hadamard of order n
        exists, or rotation="random")."""
        seed = self._seeds()["residual"]
        if self.config.rotation == "hadamard" and has_hadamard(n):
            return random_signs(n, seed)[:, None] * hadamard_rotation_matrix(n)
        return random_orthogonal(n, seed)

    def _kv(self, cfg) -> QuaRotKV:
        c = self.config
        return QuaRotKV(cfg.head_dim, c.k_bits, c.v_bits, c.kv_group_size, c.kv_asym, c.kv_clip_ratio,
                        "hadamard", self._seeds()["head_dim"])

    def _untie(self, model) -> None:
        if model.lm_head.weight is model.embed.weight or model.config.tie_word_embeddings:
            model.lm_head.weight = nn.Parameter(model.embed.weight.detach().clone())
            model.config.tie_word_embeddings = False

    def _quant_inner(self, lin: nn.Module) -> QuantLinear:
        c = self.config
        return QuantLinear(lin.in_features, lin.out_features, getattr(lin, "bias", None) is not None, c.w_bits,
                           c.w_group_size, c.w_asym).to(lin.weight.device if isinstance(lin, nn.Linear) else "cpu")

    def prepare(self, lm) -> None:
        """The quantized structure without data, for loading an artifact's state into."""
        self._check(lm)
        model, c, cfg = lm.model, self.config, lm.config
        self._untie(model)
        down_rot, head_rot, _, _ = self._online(cfg)
        for name, lin in model.linear_sites().items():
            inner = lin if c.w_bits == FULL else self._quant_inner(lin)
            model.replace(name, RotatedLinear(inner, self._rotation_for(name, down_rot, head_rot), c.a_bits,
                                              c.a_asym, c.a_clip_ratio))
        for blk in model.blocks:
            blk.attn.kv_path = self._kv(cfg)

    @staticmethod
    def _rotation_for(name: str, down_rot: Rotation, head_rot: HeadRotation) -> nn.Module | None:
        if name.endswith("mlp.down"):
            return copy.deepcopy(down_rot)
        if name.endswith("attn.o"):
            return copy.deepcopy(head_rot)
        return None

    # -- folding --------------------------------------------------------------------------------
    @torch.no_grad()
    def rotate(self, lm) -> None:
        """Fold norms, rotate the residual stream and fold the online rotations' inverses; installs
        ``RotatedLinear`` modules with full-precision inner linears. Exact (float64 arithmetic)."""
        self._check(lm)
        model, cfg = lm.model, lm.config
        dtype = model.embed.weight.dtype
        self._untie(model)
        q = self.residual_rotation(cfg.hidden_size)
        down_rot, head_rot, hd_rot, _ = self._online(cfg)
        m_down, m_o, m_d = down_rot.dense(), head_rot.dense(), hd_rot.dense()
        m_o = m_o @ torch.kron(torch.eye(cfg.num_attention_heads, dtype=torch.float64), m_d)  # kron(A, M_d)

        def set_w(lin: nn.Linear, w: torch.Tensor) -> None:
            lin.weight.data = w.to(dtype)

        def fold_norm(norm, lins) -> None:
            g = norm.weight.double()
            for lin in lins:
                set_w(lin, lin.weight.double() * g[None, :])
            norm.weight.data = torch.ones_like(norm.weight)

        model.embed.weight.data = (model.embed.weight.double() @ q).to(dtype)
        fold_norm(model.norm, [model.lm_head])
        set_w(model.lm_head, model.lm_head.weight.double() @ q)
        hd = cfg.head_dim
        for blk in model.blocks:
            att, mlp = blk.attn, blk.mlp
            readers = [m for m in (mlp.gate, mlp.up) if m is not None]
            fold_norm(blk.attn_norm, [att.q, att.k, att.v])
            fold_norm(blk.mlp_norm, readers)
            for lin in (att.q, att.k, att.v, *readers):
                set_w(lin, lin.weight.double() @ q)
            for lin in (att.o, mlp.down):
                set_w(lin, q.T @ lin.weight.double())
                if lin.bias is not None:
                    lin.bias.data = (q.T @ lin.bias.double()).to(dtype)
            # values rotated per head by M_d (output rows), o's input by kron(A, M_d)
            wv = att.v.weight.double().reshape(-1, hd, att.v.in_features)
            set_w(att.v, torch.einsum("dk,hdi->hki", m_d, wv).reshape(-1, att.v.in_features))
            if att.v.bias is not None:
                att.v.bias.data = (att.v.bias.double().reshape(-1, hd) @ m_d).reshape(-1).to(dtype)
            set_w(att.o, att.o.weight.double() @ m_o)
            set_w(mlp.down, mlp.down.weight.double() @ m_down)
        for name, lin in model.linear_sites().items():
            model.replace(name, RotatedLinear(lin, self._rotation_for(name, down_rot, head_rot)))

    # -- the whole method -----------------------------------------------------------------------
    def quantize(self, lm, data: torch.Tensor | None):
        c = self.config
        if c.w_bits != FULL and c.w_method == "gptq":
            if data is None:
                raise DataError("quarot: w_method='gptq' needs calibration data (or set w_method='rtn')")
            data = check_calibration(lm, data, "quarot")
        self.rotate(lm)
        model = lm.model
        if c.w_bits != FULL:
            if c.w_method == "gptq":
                packed = self._gptq(lm, data)
            else:
                packed = {name: rtn(site.inner.weight.detach(), c.w_bits, c.w_asym, c.w_group_size, c.w_clip)
                          for name, site in model.linear_sites().items()}
            for name, site in model.linear_sites().items():
                site.inner = QuantLinear.from_codes(site.inner, *packed[name], c.w_bits, c.w_asym)
        for site in model.linear_sites().values():
            site.a_bits, site.a_asym, site.a_clip = c.a_bits, c.a_asym, c.a_clip_ratio
        for blk in model.blocks:
            blk.attn.kv_path = self._kv(lm.config)
        return lm

    @torch.no_grad()
    def _gptq(self, lm, data: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Sequential GPTQ on the rotated weights, as QuaRot's ``gptq_fwrd`` does. Activations and
        the KV cache stay in full precision while the weights are fitted (QuaRot configures its
        activation quantizers afterwards)."""
        c = self.config
        return sequential_gptq(lm.model, data, c.w_bits, c.w_asym, c.w_group_size, c.w_clip, c.percdamp,
                               c.act_order, c.batch_size, label="quarot gptq")
