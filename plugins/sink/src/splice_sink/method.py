"""The ``sink`` evaluator: Sink_k^eps (eps = 0.3) over layers and heads, on the first tokens of text windows."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field
from splice.data.corpora import default_eval_corpus, load_corpus
from splice.errors import DataError
from splice.kinds.evaluator import EvalContext, EvaluatorMethod, Metric, Report
from splice.method import MethodConfig, Paper

from .metric import sink_rates


class SinkConfig(MethodConfig):
    epsilon: float = Field(0.3, gt=0, lt=1, description="importance threshold (paper: 0.3)")
    tokens: int = Field(64, gt=1, description="sequence length T (paper: 64)")
    samples: int = Field(100, gt=0, description="number of sequences (paper: 100)")
    corpus: str = Field("auto", description="text to cut sequences from (auto: the model's evaluation corpus)")
    positions: int = Field(4, ge=1, description="report sink_k for the first k positions")
    bos: bool = Field(True, description="start each sequence with the tokenizer's BOS (as documents start in "
                                        "training); false: plain corpus tokens, for models trained on windows "
                                        "cut from long documents")
    batch_size: int = Field(8, gt=0)


def sequences(lm, corpus: str, tokens: int, samples: int, bos: bool = True) -> torch.Tensor:
    """``samples`` sequences of ``tokens`` ids: BOS (when asked and the tokenizer has one) + consecutive
    corpus tokens; the corpus is tokenized once and cut into consecutive non-overlapping pieces."""
    ids = lm.encode(load_corpus(corpus), add_special_tokens=False)
    bos = lm.tokenizer.bos_id if bos else None
    body = tokens - (1 if bos is not None else 0)
    n = len(ids) // body
    if n < samples:
        raise DataError(f"sink: corpus {corpus!r} has {len(ids)} tokens, fewer than {samples} sequences of {tokens}")
    rows = [([bos] if bos is not None else []) + ids[i * body:(i + 1) * body] for i in range(samples)]
    return torch.tensor(rows, dtype=torch.long)


class Sink(EvaluatorMethod):
    """Attention sink metric Sink_k^eps: % of (layer, head) with mean attention > eps on token k."""

    name = "sink"
    Config = SinkConfig
    paper = Paper(title="When Attention Sink Emerges in Language Models: An Empirical View", arxiv="2410.10781",
                  claim="LMs trained with softmax attention put an attention sink on the first token "
                        "(high Sink_1^0.3); it does not emerge with sigmoid attention without normalisation")

    @classmethod
    def empty_data_config(cls, tmp: Path) -> dict:
        """A config whose data is empty (an empty corpus file), for the conformance suite."""
        empty = tmp / "empty.txt"
        empty.write_text("")
        return {"corpus": str(empty)}

    def evaluate(self, lm, ctx: EvalContext) -> Report:
        c = self.config
        if not hasattr(lm, "model") or not hasattr(lm, "tokenizer"):
            raise DataError("sink: expects a LanguageModel (model + tokenizer)")
        if c.tokens > lm.config.max_position_embeddings:
            raise DataError(f"sink: tokens {c.tokens} exceeds the model's {lm.config.max_position_embeddings} positions")
        if c.positions > c.tokens:
            raise DataError(f"sink: positions {c.positions} exceeds tokens {c.tokens}")
        corpus = default_eval_corpus(lm.source) if c.corpus == "auto" else c.corpus
        windows = sequences(lm, corpus, c.tokens, c.samples, c.bos)
        rates = sink_rates(lm.model, windows, c.epsilon, c.batch_size)  # L×H×T
        per_pos = rates.mean(dim=(0, 1)) * 100
        metrics = {
            f"sink_{k}": Metric(value=float(per_pos[k]), direction="none",
                                description=f"Sink^{c.epsilon} of position {k} (0 = first token), % of "
                                            "(sequence, layer, head)")
            for k in range(c.positions)
        }
        metrics["sink_max_other"] = Metric(
            value=float(per_pos[1:].max()) if c.tokens > 1 else 0.0, direction="none",
            description="largest Sink^eps over positions >= 1")
        return self.report(metrics, corpus=corpus, tokens=c.tokens, samples=c.samples, epsilon=c.epsilon, bos=c.bos,
                           sink_0_per_layer=[round(float(v) * 100, 2) for v in rates[:, :, 0].mean(1)],
                           sink_0_per_head=[[round(float(v) * 100, 2) for v in row] for row in rates[:, :, 0]])
