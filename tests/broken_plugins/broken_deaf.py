"""A quantizer that ignores its config: whatever ``w_bits`` says, it quantizes to 4 bits."""

from __future__ import annotations

from pydantic import Field
from splice import MethodConfig, Paper, hookimpl
from splice.kinds import QuantizerMethod
from splice.quant import QuantLinear


class DeafConfig(MethodConfig):
    w_bits: int = Field(4, ge=2, le=16, description="weight bits (ignored: the defect)")


class Deaf(QuantizerMethod):
    """Round-to-nearest that never reads its config."""

    name = "deaf"
    Config = DeafConfig
    paper = Paper(title="A broken quantizer for the conformance suite's own tests", claim="none")
    full_precision_config = {"w_bits": 16}

    def prepare(self, lm) -> None:
        for name, lin in list(lm.model.linear_sites().items()):
            lm.model.replace(name, QuantLinear(lin.in_features, lin.out_features, lin.bias is not None, 4))

    def quantize(self, lm, data):
        for name, lin in list(lm.model.linear_sites().items()):
            lm.model.replace(name, QuantLinear.from_linear(lin, w_bits=4))
        return lm


@hookimpl
def register_quantizers(register):
    register(Deaf)
