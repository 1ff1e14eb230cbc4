"""``longctx``: what a model keeps when queries run against a long, fixed, prefilled context.

Every example is a fixed context prefilled once (``Decoder.prefill``: attention methods may
post-process it offline, e.g. cluster its keys) and a query run on a fork of that cache:

* ``passkey`` / ``kv``: a pass key hidden among filler sentences, or one record among
  ``key = value`` records (``splice.data.retrieval``), at the given context lengths (in tokens) and
  needle depths; the question comes after the context and the greedy answer must match;
* ``ppl``: perplexity of a continuation of real text (WikiText-2; the embedded model's own held-out
  text for ``tiny``) given a fixed prefix of the stated length; the continuation is fed ``chunk``
  tokens per forward (1 = as decoding sees it);
* fidelity (on every question and continuation forward): keys touched, top-k key recall, attention
  mass recall and output error against dense attention on the same q, k, v, per layer.
"""

from __future__ import annotations

import time
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from splice.data.corpora import default_eval_corpus, load_corpus
from splice.errors import DataError
from splice.kinds import EvalContext, EvaluatorMethod, Metric, Report
from splice.method import MethodConfig, Paper
from splice.progress import progress

from .fidelity import FidelityStats, probing
from .tasks import FixedContextExample, as_batch, retrieval_examples, text_windows_from_text

Task = Literal["passkey", "kv", "ppl"]
QUESTION_ROOM = 64  # positions kept free after the context for the question and the answer


class LongCtxConfig(MethodConfig):
    tasks: list[Task] = Field(["passkey", "kv", "ppl"], min_length=1, description="which tasks to run")
    lengths: list[int] | None = Field(None, min_length=1, description=(
        "fixed-context lengths in tokens; default: 1024, and 512 for the embedded tiny models (their text "
        "is modelled well only up to ~700 positions: tiny-eval perplexity rises from ~9 at positions 256-768 "
        "to ~19 at 768-1024, so a 1024-token prefix measures that decay, not the attention method)"))
    examples: int = Field(8, gt=0, description="retrieval examples per task and length")
    depths: list[float] | None = Field(None, description="needle depths in [0, 1] (cycled over the examples); "
                                                         "default: spread evenly, (i + 0.5) / examples")
    ppl_examples: int = Field(4, gt=0, description="text windows per length for the fixed-prefix perplexity")
    continuation: int = Field(128, gt=1, description="tokens of the continuation scored after the prefix")
    chunk: int = Field(1, gt=0, description="continuation tokens per forward (1: token by token, as decoding)")
    corpus: str = Field("auto", description="text for the perplexity task: auto (WikiText-2; the embedded model's "
                                            "own held-out text, tiny-eval, for tiny), a corpus name or a file")
    fidelity: bool = Field(True, description="measure keys touched, recall and output error against dense")
    topk: int = Field(8, gt=0, description="k of the top-k key recall")
    seed: int = 0

    @field_validator("lengths")
    @classmethod
    def _lengths(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(n < 16 for n in v):
            raise ValueError(f"lengths: every context length must be at least 16 tokens (got {v})")
        return v

    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (not v or any(not 0 <= d <= 1 for d in v)):
            raise ValueError(f"depths: needle depths must lie in [0, 1] (got {v})")
        return v


class LongCtx(EvaluatorMethod):
    """Fixed-context evaluation: retrieval accuracy, fixed-prefix perplexity, attention fidelity."""

    name = "longctx"
    Config = LongCtxConfig
    paper = Paper(title="Squeezed Attention: Accelerating Long Context Length LLM Inference", arxiv="2411.09688",
                  claim="the fixed-context setting of the paper: many queries against one prefilled long context; "
                        "accuracy and perplexity kept at a reduced KV budget, and the keys each query touches")
    conformance_config: ClassVar[dict] = {"lengths": [96], "examples": 2, "ppl_examples": 1, "continuation": 8}

    def evaluate(self, lm, ctx: EvalContext) -> Report:
        c: LongCtxConfig = self.config  # type: ignore[assignment]
        if not hasattr(lm, "model") or not hasattr(lm, "tokenizer"):
            raise DataError("longctx: expects a LanguageModel (model + tokenizer)")
        limit = lm.config.max_position_embeddings
        lengths = c.lengths or default_lengths(lm)
        too_long = [n for n in lengths if n + max(QUESTION_ROOM, c.continuation) > limit]
        if too_long:
            raise DataError(f"longctx: lengths {too_long} leave no room for the question/continuation within the "
                            f"model's {limit} positions")
        corpus = default_eval_corpus(lm.source) if c.corpus == "auto" else c.corpus
        text = load_corpus(corpus) if "ppl" in c.tasks else ""  # data errors before any work
        stats = FidelityStats()
        metrics: dict[str, Metric] = {}
        details: dict = {"lengths": lengths, "per_depth": {}, "context_tokens": {}}
        start = time.perf_counter()
        lm.model.eval()
        for task in c.tasks:
            per_len = []
            for n in lengths:
                if task == "ppl":
                    windows = text_windows_from_text(lm, text, n, c.continuation, c.ppl_examples)
                    value = self._perplexity(lm, windows, stats)
                    metrics[f"ppl@{n}"] = Metric(value=value, direction="lower",
                                                 description=f"{corpus}: {c.ppl_examples} windows, prefix {n} "
                                                             f"tokens, {c.continuation}-token continuation")
                else:
                    exs = retrieval_examples(lm, task, n, c.examples, c.depths, c.seed)
                    hits = self._retrieval(lm, exs, stats)
                    value = sum(hits) / len(hits)
                    metrics[f"{task}@{n}"] = Metric(value=value, direction="higher",
                                                    description=f"{len(exs)} examples, context <= {n} tokens")
                    depth_acc: dict[str, list[int]] = {}
                    for e, h in zip(exs, hits):
                        depth_acc.setdefault(f"{e.depth:.2f}", []).append(int(h))
                    details["per_depth"][f"{task}@{n}"] = {d: sum(v) / len(v) for d, v in depth_acc.items()}
                    details["context_tokens"][f"{task}@{n}"] = sum(len(e.context) for e in exs) / len(exs)
                per_len.append(value)
            metrics[task] = Metric(value=sum(per_len) / len(per_len), direction="lower" if task == "ppl" else "higher",
                                   description=f"mean over context lengths {lengths}")
        if c.fidelity:
            overall = stats.overall()
            desc = {"keys_touched": ("lower", "fraction of the fixed context's keys attended (non-zero weight)"),
                    "topk_recall": ("higher", f"share of dense attention's top-{c.topk} context keys attended"),
                    "mass_recall": ("higher", "share of dense attention's weight on the context that is attended"),
                    "output_error": ("lower", "relative L2 error of attention outputs vs dense on the same q, k, v")}
            for key, (direction, text_) in desc.items():
                metrics[key] = Metric(value=overall.get(key, float("nan")), direction=direction, description=text_)
            details["per_layer"] = stats.per_layer()
        metrics["seconds"] = Metric(value=time.perf_counter() - start, direction="lower", timing=True,
                                    description="wall-clock of the whole evaluation")
        return self.report(metrics, **details)

    # -- tasks ---------------------------------------------------------------------------------
    def _retrieval(self, lm, exs: list[FixedContextExample], stats: FidelityStats) -> list[bool]:
        c = self.config
        hits = []
        with progress(f"longctx {exs[0].kind}", len(exs)) as bar:
            for e in exs:
                cache = lm.model.prefill(as_batch(e.context, lm.model.device))
                hits.append(answer_question(lm, e, cache, stats if c.fidelity else None, c.topk))
                bar.advance()
        return hits

    def _perplexity(self, lm, windows: list[FixedContextExample], stats: FidelityStats) -> float:
        c = self.config
        total, count = 0.0, 0
        with progress("longctx ppl", len(windows)) as bar:
            for w in windows:
                cache = lm.model.prefill(as_batch(w.context, lm.model.device))
                nll, n = continuation_nll(lm, w, cache, stats if c.fidelity else None, c.topk, c.chunk)
                total, count = total + nll, count + n
                bar.advance()
        return float(torch.tensor(total / count).exp())


def default_lengths(lm) -> list[int]:
    """1024 tokens; 512 for the embedded tiny models (see ``LongCtxConfig.lengths``)."""
    return [512] if str(getattr(lm, "source", "")).startswith("tiny") else [1024]


@torch.no_grad()
def answer_question(lm, example: FixedContextExample, cache, stats: FidelityStats | None = None,
                    topk: int = 8) -> bool:
    """Ask ``example``'s question on a fork of ``cache`` (its prefilled context); greedy answer correct?

    With ``stats``, the question's forward is probed for attention fidelity.
    """
    if cache is None or cache.prefix_length == 0:
        raise DataError("longctx: a query needs a prefilled fixed context (model.prefill(context_ids))")
    model, dev = lm.model, lm.model.device
    fork = cache.fork()
    want = example.answer.strip()
    n_new = len(lm.encode(example.answer, add_special_tokens=False)) + 1
    with probing(model, stats, topk) if stats is not None else _null():
        logits = model(as_batch(example.question, dev), cache=fork).logits[:, -1]
    tokens: list[int] = []
    for step in range(n_new):  # greedy; stops as soon as the answer is produced or missed
        tokens.append(int(logits.argmax(-1)))
        text = lm.tokenizer.decode(tokens).strip()
        if text.startswith(want):
            return True
        if not want.startswith(text):
            return False
        if step + 1 < n_new:
            logits = model(torch.tensor([[tokens[-1]]], device=dev), cache=fork).logits[:, -1]
    return False


@torch.no_grad()
def continuation_nll(lm, example: FixedContextExample, cache, stats: FidelityStats | None = None, topk: int = 8,
                     chunk: int = 1) -> tuple[float, int]:
    """(summed NLL, tokens) of ``example.question`` (a continuation) given the prefilled context, fed
    ``chunk`` tokens per forward on a fork; token i is predicted from the context and tokens < i."""
    if cache is None or cache.prefix_length == 0:
        raise DataError("longctx: a query needs a prefilled fixed context (model.prefill(context_ids))")
    model = lm.model
    fork = cache.fork()
    ids = as_batch(example.question, model.device)
    total, count = 0.0, 0
    for i in range(0, ids.shape[1] - 1, chunk):
        x = ids[:, i:min(i + chunk, ids.shape[1] - 1)]
        with probing(model, stats, topk) if stats is not None else _null():
            logits = model(x, cache=fork).logits
        y = ids[:, i + 1:i + 1 + x.shape[1]]
        total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
        count += y.numel()
    return total, count


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
