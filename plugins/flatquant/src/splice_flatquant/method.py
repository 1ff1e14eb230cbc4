"""``flatquant``: FlatQuant: Flatness Matters for LLM Quantization (Sun et al., arXiv 2410.09426).

Learnable affine transforms per linear layer (Kronecker products of two small matrices in SVD form,
with per-channel scaling), learnable weight and activation clipping, and per-head key/value
transforms, calibrated block by block to reproduce each full-precision block's output under
W4A4KV4 quantization; then merged where possible and packed. See ``calibration.py`` for what is
learnt and merged, ``modules.py`` for what runs online, ``kernels/`` for the fused kernel.
"""

from __future__ import annotations

import hashlib
import json
import resource
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator
from splice.blockwise import BlockRunner, check_calibration
from splice.errors import ConfigError, DataError, IncompatibleError
from splice.gptq import sequential_gptq
from splice.kinds.quantizer import QuantizerMethod
from splice.method import MethodConfig, Paper
from splice.progress import progress
from splice.quant import QuantLinear
from torch import nn

from .calibration import BlockTransforms, block_sites, install, sq_init, structure, train_block
from .modules import FULL
from .transforms import kron_factors


def _bits(v: int, field: str) -> int:
    if v != FULL and not 2 <= v <= 8:
        raise ValueError(f"{field} must be 2..8, or 16 for full precision (got {v})")
    return v


class FlatQuantConfig(MethodConfig):
    """Defaults are the paper's W4A4KV4 setting (official README command: ``--w_bits 4 --a_bits 4
    --k_bits 4 --k_asym --k_groupsize 128 --v_bits 4 --v_asym --v_groupsize 128 --cali_bsz 4
    --epoch 15 --flat_lr 5e-3 --lwc --lac --cali_trans --add_diag``, with 128 calibration sequences
    of 2048 tokens: set those in the recipe's [calibration] table)."""

    w_bits: int = Field(4, description="weight bits, per output channel, round-to-nearest after LWC (2..8; 16 = off)")
    w_asym: bool = False
    w_method: Literal["rtn", "gptq"] = Field("rtn", description="weights once the transforms are merged: round-to-"
                                                                "nearest on the LWC-clipped range (the paper's main "
                                                                "results) or GPTQ on it (the official --gptq; needs "
                                                                "calibration data)")
    percdamp: float = Field(0.01, gt=0, description="GPTQ dampening, fraction of the mean Hessian diagonal")
    a_bits: int = Field(4, description="activation bits, per token (2..8; 16 = off)")
    a_asym: bool = False
    k_bits: int = Field(4, description="key-cache bits (2..8; 16 = off)")
    v_bits: int = Field(4, description="value-cache bits (2..8; 16 = off)")
    kv_asym: bool = Field(True, description="asymmetric K/V grids (the paper's k_asym/v_asym)")
    kv_group_size: int = Field(-1, description="K/V elements per scale along head_dim; -1 = one per head "
                                               "(the paper's group 128 = LLaMA's head_dim)")
    epochs: int = Field(15, gt=0, description="passes over the calibration set per block")
    lr: float = Field(5e-3, gt=0, description="AdamW learning rate of the transforms and scalings")
    clip_lr_mult: float = Field(10.0, gt=0, description="LWC/LAC learning rate = lr x this")
    min_lr_ratio: float = Field(1e-3, ge=0, description="cosine schedule floor, as a fraction of lr")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (torch's default, which the official code keeps)")
    batch_size: int = Field(4, gt=0, description="calibration sequences per step")
    transform: Literal["svd", "direct"] = Field("svd", description="P = U diag(s) V^T with Cayley-orthogonal U, V "
                                                                   "(cheap exact inverse) or a direct matrix")
    diag_scaling: bool = Field(True, description="learnable per-channel scaling before each Kronecker transform")
    diag_init: Literal["sq", "one"] = Field("sq", description="SmoothQuant-style or all-ones initial scaling")
    diag_alpha: float = Field(0.3, ge=0, le=1, description="SmoothQuant migration strength of the initial scaling")
    lwc: bool = Field(True, description="learnable weight clipping")
    lac: bool = Field(True, description="learnable activation (and K/V) clipping")
    seed: int = Field(0, description="seed of the random orthogonal initial transforms")
    checkpoint_dir: str | None = Field(None, description="save each calibrated block here and resume from it")

    @field_validator("w_bits", "a_bits", "k_bits", "v_bits")
    @classmethod
    def _b(cls, v: int, info) -> int:
        return _bits(v, info.field_name)

    @property
    def quantizing(self) -> bool:
        return min(self.w_bits, self.a_bits, self.k_bits, self.v_bits) < FULL


class FlatQuant(QuantizerMethod):
    """FlatQuant: learnable Kronecker affine transforms + LWC/LAC, block-wise MSE calibration."""

    name = "flatquant"
    Config = FlatQuantConfig
    paper = Paper(title="FlatQuant: Flatness Matters for LLM Quantization", arxiv="2410.09426",
                  claim="W4A4KV4 WikiText-2 PPL on LLaMA-3-8B: FP16 6.14, QuaRot 10.60, SpinQuant 7.96, "
                        "FlatQuant 6.98; online transform slowdown 0.07x vs QuaRot's 0.26x")
    full_precision_config: ClassVar[dict[str, Any]] = {"w_bits": 16, "a_bits": 16, "k_bits": 16, "v_bits": 16}
    supported_weight_bits: ClassVar[tuple[int, ...]] = (2, 3, 4, 5, 6, 7, 8, 16)
    #: the conformance suite calibrates many times on tiny: 3 epochs keep it within seconds
    conformance_config: ClassVar[dict[str, Any]] = {"epochs": 3}

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.transforms: dict[int, BlockTransforms] = {}
        self.log: list[dict[str, Any]] = []  # per calibrated block: seconds, MSE per epoch, peak memory

    # -- checks -----------------------------------------------------------------------------------
    def check(self, lm) -> None:
        """Everything that can be refused before any work: shapes the transforms need, site types."""
        cfg, c = lm.config, self.config
        kron_factors(cfg.hidden_size, "hidden_size")
        kron_factors(cfg.intermediate_size, "intermediate_size")
        if c.kv_group_size not in (-1, 0) and (c.kv_group_size < 1 or cfg.head_dim % c.kv_group_size):
            raise ConfigError(f"flatquant: kv_group_size {c.kv_group_size} does not divide head_dim {cfg.head_dim}")
        bad = {n: type(m).__name__ for n, m in lm.model.linear_sites().items() if type(m) is not nn.Linear}
        if bad:
            name, kind = next(iter(bad.items()))
            raise IncompatibleError(f"flatquant: linear site {name} is already a {kind}; FlatQuant transforms plain "
                                    "nn.Linear weights")

    def _new(self, blk, cfg, i: int) -> BlockTransforms:
        gen = torch.Generator().manual_seed(self.config.seed * 100_003 + i)
        return BlockTransforms(blk, cfg, self.config, gen)

    # -- the contract -----------------------------------------------------------------------------
    def prepare(self, lm) -> None:
        self.check(lm)
        for blk in lm.model.blocks:
            structure(blk, lm.config, self.config)

    @property
    def uses_gptq(self) -> bool:
        return self.config.w_method == "gptq" and self.config.w_bits < FULL

    def quantize(self, lm, data: torch.Tensor | None):
        self.check(lm)
        if self.uses_gptq and data is None:
            raise DataError("flatquant: w_method='gptq' needs calibration data (or set w_method='rtn')")
        if data is not None:
            self.calibrate(lm, data)
        self.finalize(lm, data=data)
        return lm

    def finalize(self, lm, quantize: bool = True, data: torch.Tensor | None = None) -> None:
        """Merge the calibrated (or, without calibration, initial) transforms into the model and pack
        the weights (GPTQ's from ``data``). ``quantize=False``: keep the transforms, leave every
        quantizer off."""
        gptq = quantize and self.uses_gptq
        if gptq:
            if data is None:
                raise DataError("flatquant: w_method='gptq' needs calibration data to finalize with")
            data = check_calibration(lm, data, "flatquant")
        for i, blk in enumerate(lm.model.blocks):
            bt = self.transforms.get(i) or self._new(blk, lm.config, i)
            install(blk, bt, self.config, quantize, pack=not gptq)
        if gptq:
            self._gptq(lm, data)

    @torch.no_grad()
    def _gptq(self, lm, data: torch.Tensor) -> None:
        """GPTQ on the merged (transformed, LWC-clipped) weights, block by block, with the online
        transforms and the activation and KV quantizers on, as the official ``--gptq`` does after
        reparameterising; then each weight is packed with the codes GPTQ chose."""
        c, model = self.config, lm.model
        packed = sequential_gptq(model, data, c.w_bits, c.w_asym, percdamp=c.percdamp, batch_size=c.batch_size,
                                 label="flatquant gptq")
        for name, codes_scale_zero in packed.items():
            site = model.get_submodule(name)
            site.inner = QuantLinear.from_codes(site.inner, *codes_scale_zero, c.w_bits, c.w_asym)

    def calibrate(self, lm, data: torch.Tensor, deadline: float | None = None) -> None:
        """Calibrate every block in turn. ``deadline`` (a ``time.time()`` value, for resumable runs
        with ``checkpoint_dir``): raise TimeoutError after the first block that ends past it."""
        c, cfg, model = self.config, lm.config, lm.model
        self.check(lm)
        data = check_calibration(lm, data, "flatquant")
        if c.quantizing and len(data) < c.batch_size:
            raise DataError(f"flatquant: {len(data)} calibration sequences are fewer than one batch "
                            f"(batch_size={c.batch_size})")
        ckpt = self._checkpoint_dir(lm, data)
        runner = BlockRunner(model, data.shape[1])
        with torch.no_grad():
            x = runner.embed(data)
        with progress("flatquant calibration", len(model.blocks)) as bar:
            for i, blk in enumerate(model.blocks):
                t0, c0 = time.perf_counter(), time.process_time()
                bt = self._new(blk, cfg, i)
                saved = None if ckpt is None else ckpt / f"block{i:03d}.pt"
                y, stats = self._fp_block(runner, i, x)
                entry: dict[str, Any] = {"block": i}
                if saved is not None and saved.exists():
                    blob = torch.load(saved, map_location="cpu", weights_only=False)
                    bt.load_state_dict(blob["state"])
                    entry.update(blob["log"], resumed=True)
                else:
                    if c.diag_scaling and c.diag_init == "sq":
                        self._init_scaling(blk, bt, stats)
                    if c.quantizing:
                        entry["mse"] = train_block(runner, i, bt, x, y, c)
                    entry["seconds"] = round(time.perf_counter() - t0, 2)
                    entry["cpu_seconds"] = round(time.process_time() - c0, 2)  # wall time lies on a shared machine
                    entry["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
                    entry["activation_mb"] = round(2 * x.numel() * x.element_size() / 2**20, 1)
                    if saved is not None:
                        torch.save({"state": bt.state_dict(), "log": entry}, saved)
                self.transforms[i] = bt
                self.log.append(entry)
                if entry.get("mse"):
                    bar.note(f"block {i}: mse {entry['mse'][0]:.3g} -> {entry['mse'][-1]:.3g}")
                bar.advance()
                x = y
                if deadline is not None and time.time() > deadline and i + 1 < len(model.blocks):
                    raise TimeoutError(f"flatquant: stopped after block {i} (deadline); "
                                       f"blocks 0..{i} are saved in {ckpt}")

    # -- helpers ----------------------------------------------------------------------------------
    @torch.no_grad()
    def _fp_block(self, runner, i: int, x: torch.Tensor):
        """The full-precision block's outputs, and per-channel max |input| of its transformed groups."""
        blk, b = runner.model.blocks[i], self.config.batch_size
        stats: dict[str, torch.Tensor] = {}

        def keep(key: str, t: torch.Tensor) -> None:
            m = t.detach().abs().reshape(-1, t.shape[-1]).amax(0)
            stats[key] = m if key not in stats else torch.maximum(stats[key], m)

        hooks = [blk.attn_norm.register_forward_hook(lambda _m, _a, out: keep("ln", out)),
                 blk.mlp_norm.register_forward_hook(lambda _m, _a, out: keep("ug", out)),
                 blk.mlp.down.register_forward_pre_hook(lambda _m, args: keep("down", args[0]))]
        try:
            y = torch.cat([runner(i, x[j:j + b]) for j in range(0, len(x), b)])
        finally:
            for h in hooks:
                h.remove()
        return y, stats

    def _init_scaling(self, blk, bt: BlockTransforms, stats: dict[str, torch.Tensor]) -> None:
        a = self.config.diag_alpha
        sites = block_sites(blk)
        eps = 1e-5  # the official running max starts at 1e-5
        w_ln = torch.cat([sites[n].weight for n in ("attn.q", "attn.k", "attn.v")]).abs().amax(0)
        w_ug = torch.cat([sites[n].weight for n in ("mlp.gate", "mlp.up") if n in sites]).abs().amax(0)
        w_down = sites["mlp.down"].weight.abs().amax(0)
        with torch.no_grad():
            bt.ln.diag.copy_(sq_init(w_ln, stats["ln"].clamp(min=eps), a))
            bt.ug.diag.copy_(sq_init(w_ug, stats["ug"].clamp(min=eps), a))
            bt.down.diag.copy_(sq_init(w_down, stats["down"].clamp(min=eps), a))

    def _checkpoint_dir(self, lm, data: torch.Tensor) -> Path | None:
        if self.config.checkpoint_dir is None:
            return None
        # the weight quantizer runs after calibration: RTN and GPTQ share the calibrated transforms
        cfg = self.config.model_dump(exclude={"checkpoint_dir", "w_method", "percdamp"})
        h = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode())
        h.update(data.cpu().numpy().tobytes())
        first = lm.model.blocks[0].attn.q.weight
        h.update(f"{lm.config.model_dump_json()}{float(first.detach().double().sum()):.10e}".encode())
        path = Path(self.config.checkpoint_dir).expanduser() / h.hexdigest()[:16]
        path.mkdir(parents=True, exist_ok=True)
        return path
