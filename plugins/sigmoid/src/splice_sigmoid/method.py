"""The ``sigmoid`` attention method: sigmoid attention without normalisation, and the paper's variants."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator
from splice.kinds.attention import AttentionMethod, AttentionSite
from splice.method import MethodConfig, Paper
from torch import nn

from .attention import Similarity, SimilarityAttention


class SigmoidConfig(MethodConfig):
    similarity: Similarity = Field(
        "sigmoid", description="sigmoid | elu (elu+1) | exp (softmax, with normalize) | linear | elu_kernel | "
                               "mlp_kernel (phi(q)·phi(k) kernels)")
    normalize: bool = Field(False, description="divide each query's weights by their sum (False: the paper's "
                                               "no-sink setting)")
    mlp_bias: bool = Field(False, description="biases in the mlp kernel's two linears")

    @model_validator(mode="after")
    def _exp_needs_normalisation(self) -> SigmoidConfig:
        if self.similarity == "exp" and not self.normalize:
            raise ValueError("similarity 'exp' is softmax attention and needs normalize=true")
        return self


class SigmoidAttention(AttentionMethod):
    """Sigmoid attention without normalisation (no attention sink), plus the paper's similarity variants."""

    name = "sigmoid"
    Config = SigmoidConfig
    paper = Paper(title="When Attention Sink Emerges in Language Models: An Empirical View", arxiv="2410.10781",
                  claim="softmax-trained LMs put a sink on the first token; with sigmoid attention without "
                        "normalisation no sink emerges")
    exact_config: ClassVar[dict[str, Any] | None] = {"similarity": "exp", "normalize": True}
    incremental_exact = True
    causal = True

    def build(self, site: AttentionSite) -> nn.Module:
        c = self.config
        return SimilarityAttention(c.similarity, c.normalize, head_dim=site.head_dim, mlp_bias=c.mlp_bias)
