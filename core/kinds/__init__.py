"""The five kind contracts (plus model providers). One page each in docs/kinds/."""

from .activation import ActivationMethod, MLPSite
from .attention import AttentionMethod, AttentionModule, AttentionSite
from .evaluator import EvalContext, EvaluatorMethod, Metric, Report
from .model import ModelProvider
from .quantizer import QuantizedModule, QuantizerMethod, bits_per_weight
from .unlearner import Example, UnlearnerMethod, UnlearnTask

BASES = {
    "attention": AttentionMethod, "activation": ActivationMethod, "quantizer": QuantizerMethod,
    "unlearner": UnlearnerMethod, "evaluator": EvaluatorMethod, "model": ModelProvider,
}

__all__ = [
    "ActivationMethod", "AttentionMethod", "AttentionModule", "AttentionSite", "BASES", "EvalContext",
    "EvaluatorMethod", "Example", "MLPSite", "Metric", "ModelProvider", "QuantizedModule", "QuantizerMethod",
    "Report", "UnlearnTask", "UnlearnerMethod", "bits_per_weight",
]
