"""The quantizer kind: replace linear sites (and optionally the KV path) with quantized modules."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..method import Method


class QuantizedModule(nn.Module):
    """Mixin for modules a quantizer installs: they say what their weights cost.

    ``weight_bits()`` is the number of bits the stored weights take (payload plus scales/zeros),
    ``weight_count()`` the number of weights they represent; bits per weight is the ratio.
    """

    def weight_bits(self) -> int:
        raise NotImplementedError

    def weight_count(self) -> int:
        raise NotImplementedError


class QuantizerMethod(Method):
    kind: ClassVar[str] = "quantizer"
    #: Config values that turn quantization off while keeping every transform: logits must then
    #: equal the unquantized model's (conformance). None if the method has no such setting.
    full_precision_config: ClassVar[dict[str, Any] | None] = None
    #: The config field that sets weight bits (conformance checks more bits => less error).
    weight_bits_field: ClassVar[str] = "w_bits"
    #: The values of ``weight_bits_field`` the method accepts (16 = full precision, if it has that);
    #: the conformance suite checks every other width from -1 to 33 is refused with a ConfigError.
    #: None: only nonsense widths (0, -1, 1000) are checked.
    supported_weight_bits: ClassVar[tuple[int, ...] | None] = None

    def prepare(self, lm) -> None:
        """Install the quantized modules' structure without data (used to reload artifacts)."""
        raise NotImplementedError

    def calibrate(self, lm, data: torch.Tensor) -> None:
        """Fit what needs data (transforms, clipping, scales) on token windows N×T."""

    def finalize(self, lm) -> None:
        """After calibration: fold what can be folded and pack the weights."""

    def quantize(self, lm, data: torch.Tensor | None) -> Any:
        self.prepare(lm)
        if data is not None:
            self.calibrate(lm, data)
        self.finalize(lm)
        return lm


def bits_per_weight(model: nn.Module) -> float:
    """Over every linear weight in the blocks: quantized modules report theirs, plain ones 8·bytes."""
    bits = count = 0
    for name, mod in model.named_modules():
        if isinstance(mod, QuantizedModule):
            bits += mod.weight_bits()
            count += mod.weight_count()
        elif isinstance(mod, nn.Linear) and name.startswith("blocks."):
            bits += mod.weight.numel() * mod.weight.element_size() * 8
            count += mod.weight.numel()
    return bits / max(count, 1)
