"""``perplexity``: mean token NLL over non-overlapping windows of a corpus, exponentiated."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from pydantic import Field

from ..data.corpora import default_eval_corpus, load_corpus
from ..data.packing import windows
from ..errors import DataError
from ..kinds.evaluator import EvalContext, EvaluatorMethod, Metric, Report
from ..method import MethodConfig, Paper
from ..progress import progress

_TOKENS: dict[tuple[int, str], list[int]] = {}


def corpus_ids(lm, corpus: str) -> list[int]:
    """The corpus tokenized once (BOS at its start only), cached per tokenizer."""
    key = (id(lm.tokenizer.tok), corpus)
    if key not in _TOKENS:
        _TOKENS[key] = lm.encode(load_corpus(corpus))
    return _TOKENS[key]


class PerplexityConfig(MethodConfig):
    corpus: str = Field("auto", description="wikitext2, tinyshakespeare, tiny-eval, a file; auto: tiny-eval for "
                                            "the embedded model, wikitext2 otherwise")
    context: int = Field(512, gt=1, description="window length in tokens")
    max_windows: int | None = Field(40, gt=0, description="score the first N windows (None: all)")
    batch_size: int = Field(4, gt=0)


@torch.no_grad()
def score_windows(model, win: torch.Tensor, batch_size: int) -> tuple[float, int, float]:
    """(total NLL, tokens scored, seconds) over windows N×T, each scored from its own start."""
    model(win[:1, :8].to(model.device))  # warm-up, so throughput is not charged for first-call setup
    total, count, start = 0.0, 0, time.perf_counter()
    with progress("perplexity", len(win)) as bar:
        for i in range(0, len(win), batch_size):
            x = win[i:i + batch_size].to(model.device)
            logits = model(x).logits
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(), reduction="sum")
            total += float(nll)
            count += x[:, 1:].numel()
            bar.advance(len(x))
    return total, count, time.perf_counter() - start


class Perplexity(EvaluatorMethod):
    """Perplexity on non-overlapping windows (WikiText-2 convention of the quantization papers)."""

    name = "perplexity"
    Config = PerplexityConfig
    paper = Paper(title="Pointer Sentinel Mixture Models (WikiText-2)", arxiv="1609.07843",
                  claim="the standard language-modelling metric every method reports")
    conformance_config = {"context": 64, "max_windows": 2}

    @classmethod
    def empty_data_config(cls, workdir: Path) -> dict:
        empty = workdir / "empty.txt"
        empty.write_text("")
        return {"corpus": str(empty)}

    def evaluate(self, lm, ctx: EvalContext) -> Report:
        c = self.config
        if not hasattr(lm, "model") or not hasattr(lm, "tokenizer"):
            raise DataError("perplexity: expects a LanguageModel (model + tokenizer)")
        if c.context > lm.config.max_position_embeddings:
            raise DataError(f"perplexity: context {c.context} exceeds the model's "
                            f"{lm.config.max_position_embeddings} positions")
        corpus = default_eval_corpus(lm.source) if c.corpus == "auto" else c.corpus
        win = windows(corpus_ids(lm, corpus), c.context, c.max_windows)
        if len(win) == 0:
            raise DataError(f"perplexity: corpus {corpus!r} is shorter than one window of {c.context} tokens")
        total, count, secs = score_windows(lm.model, win, c.batch_size)
        return self.report({
            "perplexity": Metric(value=float(torch.tensor(total / count).exp()), direction="lower",
                                 description=f"{corpus}, {len(win)} windows of {c.context} tokens"),
            "tokens_per_s": Metric(value=count / secs, direction="higher", description="scoring throughput",
                                   timing=True),
        }, corpus=corpus, windows=len(win), context=c.context)
