"""Quantizer checks: bits per weight vs packed state, full-precision exactness, more bits => less error,
packed state round-trip, refusal of unsupported bit widths."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ConfigError
from ..kinds.quantizer import QuantizedModule, bits_per_weight
from .base import CheckFailed, CheckSkipped, Subject, check
from .fixtures import SEED, calibration_windows, close_logits, logits, max_diff, tiny, token_batch

#: Bit widths tried when a quantizer declares no ``supported_weight_bits``.
DEFAULT_BIT_LADDER = (2, 3, 4, 6, 8)
#: Widths that no quantizer can mean (checked when none are declared).
NONSENSE_BITS = (0, -1, 1000)
#: The packed state may take at most this many times the bits a module reports (e.g. 2-bit codes
#: in 4-bit containers); more means full-precision weights are kept beside the codes.
MAX_STORAGE_RATIO = 2.0


def quantized(s: Subject, **overrides):
    torch.manual_seed(SEED)
    lm = tiny()
    method = s.method(**overrides)
    out = method.quantize(lm, calibration_windows())
    if out is not None and hasattr(out, "model") and out is not lm:
        lm = out
    return lm, method


def field_name(s: Subject) -> str:
    f = s.cls.weight_bits_field
    if f not in s.cls.Config.model_fields:
        raise CheckSkipped(f"the config has no weight-bits field {f!r} (weight_bits_field)")
    return f


def stored_bits(module: torch.nn.Module) -> int:
    """Bits of the module's own saved state, biases excluded (they are not weights)."""
    return sum(t.numel() * t.element_size() * 8 for n, t in module.state_dict().items()
               if not n.endswith("bias"))


@check("quantizer", "bits", "bits per weight is reported and consistent with the packed state")
def bits(s: Subject) -> str:
    ref = tiny()
    total = sum(m.weight.numel() for n, m in ref.model.named_modules()
                if isinstance(m, torch.nn.Linear) and n.startswith("blocks."))
    lm, method = quantized(s)
    mods = [(n, m) for n, m in lm.model.named_modules() if isinstance(m, QuantizedModule)]
    f = s.cls.weight_bits_field
    want = getattr(method.config, f, None)
    if not mods:
        if want is not None and want < 16:
            raise CheckFailed(f"{f} = {want} but no QuantizedModule was installed: bits per weight cannot be reported")
        raise CheckSkipped("the default config installs no quantized modules")
    count = 0
    for name, m in mods:
        wb, wc = m.weight_bits(), m.weight_count()
        if wc <= 0 or wb <= 0:
            raise CheckFailed(f"{name}: weight_bits() = {wb}, weight_count() = {wc}")
        if want is not None and wb / wc < want - 1e-9:
            raise CheckFailed(f"{name}: reports {wb / wc:.3f} bits per weight, below its configured {f} = {want}")
        have = stored_bits(m)
        if have < wb:
            raise CheckFailed(f"{name}: reports {wb} bits but its saved state holds only {have} bits")
        if have > MAX_STORAGE_RATIO * wb + 64:
            raise CheckFailed(f"{name}: its saved state holds {have / wc:.2f} bits per weight, more than "
                              f"{MAX_STORAGE_RATIO}x the {wb / wc:.2f} it reports (are full-precision weights kept?)")
        count += wc
    plain = sum(m.weight.numel() for n, m in lm.model.named_modules()
                if isinstance(m, torch.nn.Linear) and n.startswith("blocks.") and not isinstance(m, QuantizedModule))
    if count + plain != total:
        raise CheckFailed(f"quantized modules report {count} weights and plain linears hold {plain}; the model has "
                          f"{total}")
    bpw = bits_per_weight(lm.model)
    return f"{len(mods)} quantized modules, {bpw:.3f} bits per weight (saved state consistent)"


@check("quantizer", "full_precision", "quantization off (full_precision_config) keeps the unquantized logits")
def full_precision(s: Subject) -> str:
    cfg = s.cls.full_precision_config
    if cfg is None:
        raise CheckSkipped("the method declares no full-precision setting (full_precision_config = None)")
    lm, _ = quantized(s, **cfg)
    ids = token_batch()
    a, b = logits(lm, ids), logits(tiny(), ids)
    ok, d, allowed = close_logits(a, b)
    if not ok:
        raise CheckFailed(f"with {cfg} the logits differ from the unquantized model by {d:.3g} (> {allowed:.3g}): "
                          "transforms are not exact, or quantization is not off")
    return f"{cfg}: max |Δ| {d:.2g}"


def kl_to_reference(lm, ref_logits: torch.Tensor, ids: torch.Tensor) -> float:
    lp = torch.log_softmax(logits(lm, ids), -1)
    lr = torch.log_softmax(ref_logits, -1)
    return float((lr.exp() * (lr - lp)).sum(-1).mean())


@check("quantizer", "bits_monotone", "more weight bits give a smaller error (KL to the unquantized model on tiny; "
       "the rest of full_precision_config keeps activations/KV unquantized)")
def bits_monotone(s: Subject) -> str:
    f = field_name(s)
    declared = getattr(s.cls, "supported_weight_bits", None)
    ladder = [b for b in (declared or DEFAULT_BIT_LADDER) if b < 16]
    # everything but the weights at full precision (activations, KV), when the method says how
    others = {k: v for k, v in (s.cls.full_precision_config or {}).items() if k != f}
    valid = []
    for b in sorted(set(ladder)):
        try:
            s.cls.make_config({**s.options(), **others, f: b})
            valid.append(b)
        except ConfigError:
            continue
    if len(valid) < 2:
        raise CheckSkipped(f"fewer than two quantized widths of {f} validate ({valid})")
    picks = sorted({valid[0], valid[len(valid) // 2], valid[-1]})
    ids = token_batch(2, 48, offset=1)
    ref = logits(tiny(), ids)
    errs = []
    for b in picks:
        lm, _ = quantized(s, **others, **{f: b})
        errs.append(kl_to_reference(lm, ref, ids))
    shown = ", ".join(f"{b} bits: {e:.3g}" for b, e in zip(picks, errs)) + (f" (with {others})" if others else "")
    for i in range(len(errs) - 1):
        if not errs[i + 1] < errs[i]:
            raise CheckFailed(f"the error does not fall as {f} grows ({shown}): is {f} honoured?")
    return f"KL to unquantized: {shown}"


@check("quantizer", "packed_roundtrip", "the packed state round-trips through safetensors into prepare()'s "
       "structure: identical logits")
def packed_roundtrip(s: Subject) -> str:
    lm, _ = quantized(s)
    state = {k: v.contiguous() for k, v in lm.model.state_dict().items()}
    if lm.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    before = logits(lm)
    with tempfile.TemporaryDirectory(prefix="splice-check-") as tmp:
        path = Path(tmp) / "state.safetensors"
        save_file(state, str(path))
        loaded = load_file(str(path))
    fresh = tiny()
    torch.manual_seed(SEED + 7)  # prepare() must not depend on the RNG for anything that is not saved
    s.method().prepare(fresh)
    missing, unexpected = fresh.model.load_state_dict(loaded, strict=False)
    missing = [m for m in missing if not (fresh.config.tie_word_embeddings and m == "lm_head.weight")]
    if missing or unexpected:
        raise CheckFailed(f"prepare() builds a structure that does not fit the saved state (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})")
    if fresh.config.tie_word_embeddings:
        fresh.model.lm_head.weight = fresh.model.embed.weight
    for k, v in state.items():
        if loaded[k].dtype != v.dtype:
            raise CheckFailed(f"{k}: saved as {v.dtype}, read back as {loaded[k].dtype}")
    after = logits(fresh)
    if not torch.equal(before, after):
        raise CheckFailed(f"logits after reloading the packed state differ (max |Δ| {max_diff(before, after):.3g})")
    packed = sorted({str(v.dtype).removeprefix("torch.") for k, v in state.items()
                     if not v.is_floating_point()})
    return f"{len(state)} tensors round-trip; identical logits; integer storage: {', '.join(packed) or 'none'}"


@check("quantizer", "refuses_bits", "unsupported bit widths are refused with a ConfigError naming the field", slow=False)
def refuses_bits(s: Subject) -> str:
    f = field_name(s)
    declared = getattr(s.cls, "supported_weight_bits", None)
    if declared:
        bad = [b for b in range(-1, 34) if b not in declared]
        for b in declared:
            try:
                s.cls.make_config({f: b})
            except ConfigError as err:
                raise CheckFailed(f"declared supported {f} = {b} is refused: {err}") from None
        default = getattr(s.cls.make_config({}), f)
        if default not in declared:
            raise CheckFailed(f"the default {f} = {default} is not among supported_weight_bits {declared}")
    else:
        bad = list(NONSENSE_BITS)
    for b in bad:
        try:
            s.cls.make_config({f: b})
        except ConfigError as err:
            if f not in str(err):
                raise CheckFailed(f"the error for {f} = {b} does not name the field: {err}") from None
            continue
        except Exception as err:  # noqa: BLE001
            raise CheckFailed(f"{f} = {b} raises {type(err).__name__}, not splice.ConfigError") from None
        raise CheckFailed(f"{f} = {b} is accepted" + (f" though supported_weight_bits is {declared}" if declared else ""))
    what = f"supported {tuple(declared)}" if declared else f"nonsense widths {NONSENSE_BITS}"
    return f"{len(bad)} unsupported widths refused ({what})"
