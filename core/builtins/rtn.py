"""``rtn``: round-to-nearest quantization of weights, activations and the KV cache."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator

from ..errors import ConfigError
from ..kinds.quantizer import QuantizerMethod
from ..method import MethodConfig, Paper
from ..quant import FULL, KVQuant, QuantLinear


def check_bits(v: int, lo: int, what: str) -> int:
    if v != FULL and not lo <= v <= 8:
        raise ValueError(f"{what} must be {lo}..8, or 16 for full precision")
    return v


class RTNConfig(MethodConfig):
    w_bits: int = Field(4, description="weight bits (2..8; 16 = leave weights in full precision)")
    w_group_size: int = Field(-1, description="weights per scale along the input dim; -1 = per output channel")
    w_asym: bool = Field(False, description="asymmetric (min/max) weight grid")
    a_bits: int = Field(16, description="activation bits, per token (4..8; 16 = off)")
    a_asym: bool = False
    a_clip: float = Field(1.0, gt=0, le=1, description="activation clipping ratio")
    kv_bits: int = Field(16, description="KV-cache bits (2..8; 16 = off)")
    kv_group_size: int = Field(-1, description="KV elements per scale along head_dim; -1 = whole head")
    kv_asym: bool = True
    sites: Literal["all", "attn", "mlp"] = "all"

    @field_validator("w_bits")
    @classmethod
    def _w(cls, v: int) -> int:
        return check_bits(v, 2, "w_bits")

    @field_validator("a_bits")
    @classmethod
    def _a(cls, v: int) -> int:
        return check_bits(v, 4, "a_bits")

    @field_validator("kv_bits")
    @classmethod
    def _kv(cls, v: int) -> int:
        return check_bits(v, 2, "kv_bits")

    @field_validator("w_group_size", "kv_group_size")
    @classmethod
    def _group(cls, v: int) -> int:
        if v != -1 and v < 1:
            raise ValueError("must be -1 (one group per row) or a positive group size")
        return v


class RTN(QuantizerMethod):
    """Round-to-nearest: per-channel/per-group weights, per-token activations, per-head KV."""

    name = "rtn"
    Config = RTNConfig
    paper = Paper(title="Round-to-nearest quantization (the baseline of LLM.int8(), GPTQ, QuaRot, FlatQuant)",
                  claim="the data-free baseline every quantizer must beat")
    full_precision_config = {"w_bits": 16, "a_bits": 16, "kv_bits": 16}
    supported_weight_bits = (2, 3, 4, 5, 6, 7, 8, 16)

    def _sites(self, lm) -> list:
        """The linear sites to quantize; group sizes that do not fit the model are errors before any work."""
        g = self.config.w_group_size
        sites = [(name, mod) for name, mod in lm.model.linear_sites().items()
                 if self.config.sites == "all" or f".{self.config.sites}." in name]
        for name, mod in sites:
            if g > 0 and self.config.w_bits != FULL and mod.in_features % g:
                raise ConfigError(f"rtn: w_group_size: {g} does not divide the {mod.in_features} input "
                                  f"features of {name}")
        kg, hd = self.config.kv_group_size, lm.config.head_dim
        if self.config.kv_bits != FULL and kg > 0 and hd % kg:
            raise ConfigError(f"rtn: kv_group_size: {kg} does not divide the head dimension {hd}")
        return sites

    def prepare(self, lm) -> None:
        c = self.config
        for name, lin in self._sites(lm):
            if c.w_bits == FULL:
                continue
            q = QuantLinear(lin.in_features, lin.out_features, lin.bias is not None, c.w_bits, c.w_group_size,
                            c.w_asym, c.a_bits, c.a_asym, c.a_clip)
            lm.model.replace(name, q.to(lin.weight.device))
        self._prepare_kv(lm)

    def _prepare_kv(self, lm) -> None:
        if self.config.kv_bits != FULL:
            for blk in lm.model.blocks:
                blk.attn.kv_path = KVQuant(self.config.kv_bits, self.config.kv_group_size, self.config.kv_asym)

    def quantize(self, lm, data: torch.Tensor | None):
        c = self.config
        for name, lin in self._sites(lm):
            if c.w_bits == FULL:
                continue
            lm.model.replace(name, QuantLinear.from_linear(lin, w_bits=c.w_bits, group_size=c.w_group_size,
                                                           w_asym=c.w_asym, a_bits=c.a_bits, a_asym=c.a_asym,
                                                           a_clip=c.a_clip))
        self._prepare_kv(lm)
        return lm
