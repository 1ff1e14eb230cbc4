"""FlatQuant's calibration of one decoder block, and the merge into inference modules.

Per block (the paper's Sec. 3.2-3.3 and the official ``cali_flat_quant``):

- transforms: P_a = Kronecker on the attention input (shared by q, k, v), P_o across heads before
  o_proj, P_v (head_dim) folded into v and o, P_k (head_dim) on queries/keys, P_ug = Kronecker on
  the MLP input (shared by gate, up), P_d = Kronecker on down's input; per-channel scalings on
  P_a, P_ug, P_d (SmoothQuant-style init, alpha 0.3);
- clipping: LWC per output channel of every linear, LAC per linear input and for K and V;
- objective: MSE between the full-precision block's output and the quantized block's output on
  the same full-precision inputs, normalised by its own value; AdamW, cosine schedule to 1e-3 of
  the learning rate; clipping logits at 10x the learning rate.

While a block trains, its sites hold ``Train*`` modules that share one ``BlockTransforms``; the
original ``nn.Linear`` weights are frozen and never modified. ``install`` then builds the inference
modules from the learnt parameters (in float64): scalings merged into the RMSNorm weights and
up's rows, P^{-T} and LWC merged into the weights (then packed), P_v into v and o, the rest online.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from splice.quant import QuantLinear
from torch import nn

from .modules import FULL, FlatKV, FlatQuantLinear
from .quantizers import LAC, LWC, lwc_clip, rows_fake_quant, weight_fake_quant
from .transforms import KronAffine, SingleAffine, kron_apply

ATTN_IN = ("attn.q", "attn.k", "attn.v")
MLP_IN = ("mlp.gate", "mlp.up")


def block_sites(block) -> dict[str, nn.Module]:
    out = {}
    for name in ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down"):
        parent, attr = name.split(".")
        mod = getattr(getattr(block, parent), attr, None)
        if isinstance(mod, nn.Module):
            out[name] = mod
    return out


class BlockTransforms(nn.Module):
    """Every learnable FlatQuant parameter of one block."""

    def __init__(self, block, cfg, c, generator: torch.Generator) -> None:
        super().__init__()
        hidden, inter = cfg.hidden_size, cfg.intermediate_size
        self.head_dim, self.n_heads = cfg.head_dim, cfg.num_attention_heads
        self.gated = getattr(block.mlp, "gate", None) is not None
        mode, diag = c.transform, c.diag_scaling
        self.ln = KronAffine(hidden, mode, diag, generator, "hidden_size")
        self.ug = KronAffine(hidden, mode, diag, generator, "hidden_size")
        self.down = KronAffine(inter, mode, diag, generator, "intermediate_size")
        self.o = SingleAffine(self.n_heads, mode, generator)
        self.v = SingleAffine(self.head_dim, mode, generator)
        self.k = SingleAffine(self.head_dim, mode, generator)
        sites = block_sites(block)
        self.site_names = list(sites)
        self.lwc = nn.ModuleDict({n.replace(".", "_"): LWC(m.out_features) for n, m in sites.items()}) \
            if c.lwc and c.w_bits < FULL else None
        self.lac = nn.ModuleDict({n.replace(".", "_"): LAC(c.a_bits, not c.a_asym, -1, c.lac) for n in sites}) \
            if c.a_bits < FULL else None
        self.k_lac = LAC(c.k_bits, not c.kv_asym, c.kv_group_size, c.lac) if c.k_bits < FULL else None
        self.v_lac = LAC(c.v_bits, not c.kv_asym, c.kv_group_size, c.lac) if c.v_bits < FULL else None
        self.c = c
        self._mats: dict[str, Any] | None = None
        self._qweights: dict[str, Any] | None = None

    # -- parameters by optimiser group ----------------------------------------------------------
    def transform_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if "lwc" not in n and "lac" not in n and not n.endswith("diag")]

    def diag_parameters(self) -> list[nn.Parameter]:
        return [t.diag for t in (self.ln, self.ug, self.down) if t.diag is not None]

    def clip_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if ("lwc" in n or "lac" in n) and p.requires_grad]

    # -- matrices and quantized weights, computed once per step ----------------------------------
    def refresh(self, sites: dict[str, nn.Module] | None = None) -> None:
        """Recompute the transform matrices; with ``sites`` (the block's original linears) also every
        fake-quantized training weight, by groups that share a transform."""
        self._mats = {"ln": self.ln.matrices(), "ug": self.ug.matrices(), "down": self.down.matrices(),
                      "o": self.o.pair(), "v": self.v.pair(), "k": self.k.pair()}
        self._qweights = None if sites is None else self.quantized_weights(sites)

    def quantized_weights(self, sites: dict[str, nn.Module]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """``weight_fake_quant(self.weight(site, W, b))`` for every site, computed group-wise: the
        weights of q/k/v (and of gate/up) share one transform, so they are concatenated, transformed,
        clipped and quantized as one tensor (all of it is per row), and the clipped rows' max/min
        come from the clipping bounds instead of another reduction. Same values as per site."""
        c, m = self.c, self.mats
        out: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        groups = [(tuple(n for n in ATTN_IN if n in sites), "ln"), (tuple(n for n in MLP_IN if n in sites), "ug"),
                  (("attn.o",), "o"), (("mlp.down",), "down")]
        sym = not c.w_asym
        for names, key in groups:
            ws = [sites[n].weight for n in names]
            w = torch.cat(ws) if len(ws) > 1 else ws[0]
            if key == "o":
                w = kron_apply(w, m["o"][1], m["v"][1])
            else:
                w = getattr(self, key).weight(w, m[key])
            if self.lwc is not None:
                cmax = torch.cat([self.lwc[n.replace(".", "_")].clip_max for n in names])
                cmin = torch.cat([self.lwc[n.replace(".", "_")].clip_min for n in names])
                w, wmax, wmin = lwc_clip(w, cmax, cmin)
            else:
                wmax, wmin = w.max(1, keepdim=True)[0], w.min(1, keepdim=True)[0]
            start = 0
            for n, w0 in zip(names, ws):
                rows = slice(start, start + w0.shape[0])
                start += w0.shape[0]
                wn, b = w[rows], sites[n].bias
                if n == "attn.v":  # the value transform on the output rows, after clipping
                    wn, b = self._v_rows(wn, b)
                    out[n] = (weight_fake_quant(wn, c.w_bits, sym), b)
                else:
                    out[n] = (rows_fake_quant(wn, c.w_bits, sym, wmax[rows], wmin[rows]), b)
        return out

    def _v_rows(self, w: torch.Tensor, b: torch.Tensor | None):
        pv = self.mats["v"][0].to(w.dtype)
        d = self.head_dim
        w = torch.matmul(pv.T, w.reshape(-1, d, w.shape[1])).reshape(w.shape)
        if b is not None:
            b = (b.reshape(-1, d) @ pv).reshape(-1)
        return w, b

    @property
    def mats(self) -> dict[str, Any]:
        if self._mats is None:
            self.refresh()
        return self._mats  # type: ignore[return-value]

    # -- weight and input maps per site ---------------------------------------------------------
    def weight(self, site: str, w: torch.Tensor, b: torch.Tensor | None):
        """The transformed (and LWC-clipped) weight of ``site``, before quantization, and its bias."""
        m = self.mats
        if site in ATTN_IN:
            w = self.ln.weight(w, m["ln"])
        elif site in MLP_IN:
            w = self.ug.weight(w, m["ug"])
        elif site == "mlp.down":
            w = self.down.weight(w, m["down"])
        elif site == "attn.o":
            w = kron_apply(w, m["o"][1], m["v"][1])
        if self.lwc is not None:
            w = self.lwc[site.replace(".", "_")](w)
        if site == "attn.v":  # value transform on the output side: each head's rows times P_v^T
            w, b = self._v_rows(w, b)
        return w, b

    def online(self, site: str, x: torch.Tensor) -> torch.Tensor:
        """The transform applied to ``site``'s input at run time (q/k/v and gate/up get theirs from
        the norm before them)."""
        m = self.mats
        if site == "attn.o":
            return kron_apply(x, m["o"][0], None)
        if site == "mlp.down":
            return self.down(x, m["down"])
        return x


class TrainNorm(nn.Module):
    """RMSNorm followed by the group's Kronecker transform (with its scaling) during calibration."""

    def __init__(self, norm: nn.Module, bt: BlockTransforms, which: str) -> None:
        super().__init__()
        self.norm, self.which = norm, which
        self._bt = [bt]  # not a submodule: parameters are owned by the BlockTransforms

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bt = self._bt[0]
        return getattr(bt, self.which)(self.norm(x), bt.mats[self.which])


class TrainLinear(nn.Module):
    def __init__(self, linear: nn.Linear, site: str, bt: BlockTransforms) -> None:
        super().__init__()
        self.linear, self.site = linear, site
        self._bt = [bt]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bt = self._bt[0]
        c = bt.c
        x = bt.online(self.site, x)
        if bt._qweights is not None:  # computed group-wise once per step by ``refresh(sites)``
            w, b = bt._qweights[self.site]
        else:
            w, b = bt.weight(self.site, self.linear.weight, self.linear.bias)
            w = weight_fake_quant(w, c.w_bits, not c.w_asym)
        if bt.lac is not None:
            x = bt.lac[self.site.replace(".", "_")](x)
        return F.linear(x, w, b)


class TrainKV(nn.Module):
    def __init__(self, bt: BlockTransforms) -> None:
        super().__init__()
        self._bt = [bt]

    def forward(self, q, k, v):
        bt = self._bt[0]
        pk, pk_inv_t = bt.mats["k"]
        q = torch.matmul(q, pk_inv_t.to(q.dtype))
        k = torch.matmul(k, pk.to(k.dtype))
        if bt.k_lac is not None:
            k = bt.k_lac(k)
        if bt.v_lac is not None:
            v = bt.v_lac(v)
        return q, k, v


class Swap:
    """Installs the training modules in one block and puts the originals back afterwards."""

    def __init__(self, block, bt: BlockTransforms) -> None:
        self.block, self.bt = block, bt
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> None:
        blk, bt = self.block, self.bt
        self.saved = {"attn_norm": blk.attn_norm, "mlp_norm": blk.mlp_norm, "kv_path": blk.attn.kv_path,
                      **block_sites(blk)}
        blk.attn_norm = TrainNorm(self.saved["attn_norm"], bt, "ln")
        blk.mlp_norm = TrainNorm(self.saved["mlp_norm"], bt, "ug")
        blk.attn.kv_path = TrainKV(bt)
        for name, lin in block_sites(blk).items():
            parent, attr = name.split(".")
            setattr(getattr(blk, parent), attr, TrainLinear(lin, name, bt))

    def __exit__(self, *exc) -> None:
        blk = self.block
        blk.attn_norm, blk.mlp_norm, blk.attn.kv_path = (self.saved["attn_norm"], self.saved["mlp_norm"],
                                                          self.saved["kv_path"])
        for name in block_sites(blk):
            parent, attr = name.split(".")
            setattr(getattr(blk, parent), attr, self.saved[name])


def sq_init(w_absmax: torch.Tensor, x_absmax: torch.Tensor, alpha: float) -> torch.Tensor:
    """SmoothQuant-style initial scaling d = max|W|^(1-a) / max|X|^a (x -> x * d, W -> W / d)."""
    return (w_absmax.pow(1 - alpha) / x_absmax.pow(alpha)).clamp(min=1e-5)


def train_block(runner, i: int, bt: BlockTransforms, x_in: torch.Tensor, y_fp: torch.Tensor, c,
                on_epoch=None) -> list[float]:
    """Minimise MSE(block_quantized(x_in), y_fp) over the block's FlatQuant parameters."""
    block = runner.model.blocks[i]
    sites = block_sites(block)  # the original linears (before Swap)
    groups = [{"params": bt.transform_parameters(), "lr": c.lr}]
    if bt.diag_parameters():
        groups.append({"params": bt.diag_parameters(), "lr": c.lr})
    if bt.clip_parameters():
        groups.append({"params": bt.clip_parameters(), "lr": c.lr * c.clip_lr_mult})
    opt = torch.optim.AdamW(groups, weight_decay=c.weight_decay)
    steps_per_epoch = len(x_in) // c.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.epochs * steps_per_epoch,
                                                       eta_min=c.lr * c.min_lr_ratio)
    history = []
    frozen = [(p, p.requires_grad) for p in block.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    try:
        with Swap(block, bt):
            for epoch in range(c.epochs):
                total = 0.0
                for j in range(steps_per_epoch):
                    sl = slice(j * c.batch_size, (j + 1) * c.batch_size)
                    bt.refresh(sites)
                    out = runner(i, x_in[sl])
                    loss = F.mse_loss(out, y_fp[sl])
                    total += float(loss.detach())
                    opt.zero_grad(set_to_none=True)
                    if float(loss.detach()) > 0 and math.isfinite(float(loss.detach())):
                        (loss / loss.detach()).backward()
                        opt.step()
                    sched.step()
                history.append(total / max(steps_per_epoch, 1))
                if on_epoch is not None:
                    on_epoch(epoch, history[-1])
    finally:
        bt._mats = bt._qweights = None
        for p, flag in frozen:
            p.requires_grad_(flag)
    return history


@torch.no_grad()
def block_loss(runner, i: int, bt: BlockTransforms, x_in: torch.Tensor, y_fp: torch.Tensor, batch: int) -> float:
    """MSE of the quantized block (current parameters) against the full-precision outputs."""
    block = runner.model.blocks[i]
    sites = block_sites(block)
    total, n = 0.0, 0
    with Swap(block, bt):
        bt.refresh(sites)
        for j in range(0, len(x_in), batch):
            out = runner(i, x_in[j:j + batch])
            total += float(F.mse_loss(out, y_fp[j:j + batch], reduction="sum"))
            n += out.numel()
    bt._mats = bt._qweights = None
    return total / max(n, 1)


# -- inference modules ------------------------------------------------------------------------
def _inner(w: torch.Tensor, b: torch.Tensor | None, c, quantize: bool, device) -> nn.Module:
    out_f, in_f = w.shape
    if quantize and c.w_bits < FULL:
        q = QuantLinear(in_f, out_f, b is not None, c.w_bits, -1, c.w_asym).to(device)
        q.set_weight(w.float())
    else:
        q = nn.Linear(in_f, out_f, bias=b is not None).to(device)
        q.weight.data = w.float().contiguous()
    if b is not None:
        q.bias = nn.Parameter(b.detach().float().clone())
    return q


def structure(block, cfg, c) -> None:
    """Install empty inference modules of the right shapes (artifact reload)."""
    from .transforms import kron_factors

    hidden_f = kron_factors(cfg.hidden_size, "hidden_size")
    inter_f = kron_factors(cfg.intermediate_size, "intermediate_size")
    gated = getattr(block.mlp, "gate", None) is not None
    for name, lin in block_sites(block).items():
        w = torch.zeros(lin.out_features, lin.in_features)
        b = torch.zeros(lin.out_features) if lin.bias is not None else None
        inner = _inner(w, b, c, True, lin.weight.device)
        if name == "attn.o":
            n1, n2 = cfg.num_attention_heads, None
        elif name == "mlp.down":
            n1, n2 = inter_f
        else:
            n1, n2 = hidden_f
        diag = cfg.intermediate_size if (name == "mlp.down" and not gated and c.diag_scaling) else None
        mod = FlatQuantLinear(inner, n1, n2, c.a_bits, not c.a_asym, diag).to(lin.weight.device)
        parent, attr = name.split(".")
        setattr(getattr(block, parent), attr, mod)
    block.attn.kv_path = FlatKV(cfg.head_dim, c.k_bits, c.v_bits, c.kv_group_size, c.kv_asym).to(
        block.attn_norm.weight.device)


@torch.no_grad()
def install(block, bt: BlockTransforms, c, quantize: bool = True, pack: bool = True) -> None:
    """Merge the learnt parameters of ``bt`` into ``block`` and install the inference modules.

    ``quantize=False`` keeps every transform but no quantizer and no weight clipping: the block then
    computes exactly what the original did (up to float rounding). ``pack=False`` (for GPTQ, which
    chooses the codes later) leaves the clipped weights in full precision and every other quantizer on.
    """
    bt64 = copy.deepcopy(bt).double()
    bt64.refresh()
    m = bt64.mats
    sites = block_sites(block)
    dtype = block.attn_norm.weight.dtype
    lwc = bt64.lwc if quantize else None
    bt64.lwc = lwc
    weights = {}
    for name, lin in sites.items():
        w, b = bt64.weight(name, lin.weight.double(), None if lin.bias is None else lin.bias.double())
        weights[name] = [w, b]
    # per-channel scalings: P_a's and P_ug's into the norms, P_d's into up's rows (gated MLPs)
    if bt64.ln.diag is not None:
        block.attn_norm.weight.data = (block.attn_norm.weight.double() * bt64.ln.diag).to(dtype)
    if bt64.ug.diag is not None:
        block.mlp_norm.weight.data = (block.mlp_norm.weight.double() * bt64.ug.diag).to(dtype)
    down_diag_online = None
    if bt64.down.diag is not None:
        if bt64.gated:
            w, b = weights["mlp.up"]
            weights["mlp.up"] = [w * bt64.down.diag[:, None], None if b is None else b * bt64.down.diag]
        else:
            down_diag_online = bt64.down.diag
    for name, lin in sites.items():
        w, b = weights[name]
        inner = _inner(w, b, c, quantize and pack, lin.weight.device)
        if name == "attn.o":
            left, right = m["o"][0], None
        elif name == "mlp.down":
            left, right = m["down"][0], m["down"][2]
        elif name in ATTN_IN:
            left, right = m["ln"][0], m["ln"][2]
        else:
            left, right = m["ug"][0], m["ug"][2]
        a_bits = c.a_bits if quantize else FULL
        diag = None if (name != "mlp.down" or down_diag_online is None) else down_diag_online.numel()
        mod = FlatQuantLinear(inner, left.shape[0], None if right is None else right.shape[0], a_bits,
                              not c.a_asym, diag).to(lin.weight.device)
        mod.left.copy_(left.float())
        if right is not None:
            mod.right.copy_(right.float())
        if diag is not None:
            mod.diag.copy_(down_diag_online.float())
        if bt64.lac is not None:
            lac = bt64.lac[name.replace(".", "_")]
            if lac.clip_max is not None:
                mod.clip.copy_(torch.cat([lac.clip_max, lac.clip_min]).float())
        parent, attr = name.split(".")
        setattr(getattr(block, parent), attr, mod)
    kv = FlatKV(bt64.head_dim, c.k_bits if quantize else FULL, c.v_bits if quantize else FULL,
                c.kv_group_size, c.kv_asym).to(block.attn_norm.weight.device)
    kv.k_mat.copy_(m["k"][0].float())
    kv.k_mat_inv_t.copy_(m["k"][1].float())
    for lac, buf in ((bt64.k_lac, kv.k_clip), (bt64.v_lac, kv.v_clip)):
        if lac is not None and lac.clip_max is not None:
            buf.copy_(torch.cat([lac.clip_max, lac.clip_min]).float())
    block.attn.kv_path = kv
