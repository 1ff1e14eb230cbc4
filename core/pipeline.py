"""``compose``: load -> attention/activation swaps -> training -> unlearn -> quantize -> evaluate -> save.

Everything that can be checked is checked before any work starts: method names, their configs,
incompatible combinations, data that cannot be used. The order is fixed (see docs/guide.md).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .data.corpora import default_calibration_corpus, default_eval_corpus, default_train_corpus, load_corpus
from .data.packing import pack
from .errors import ConfigError, DataError, IncompatibleError
from .install import install_activation, install_attention
from .kinds.attention import AttentionMethod
from .kinds.evaluator import EvalContext, Report
from .kinds.unlearner import Example, UnlearnTask
from .measure import footprint
from .method import Method
from .model import LanguageModel, load
from .recipe import Recipe, Step, TaskSpec
from .registry import Entry, Registry, get_registry
from .train import TrainConfig, train


@dataclass
class Resolved:
    """A recipe step with its registry entry and validated method instance."""

    kind: str
    step: Step
    entry: Entry
    method: Method

    def manifest(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.entry.name, "distribution": self.entry.distribution,
                "version": self.entry.version, "config": self.method.config.model_dump(mode="json")}


@dataclass
class Composition:
    recipe: Recipe
    resolved: list[Resolved]

    def of(self, kind: str) -> list[Resolved]:
        return [r for r in self.resolved if r.kind == kind]

    def one(self, kind: str) -> Resolved | None:
        found = self.of(kind)
        return found[0] if found else None


@dataclass
class ComposeResult:
    lm: LanguageModel
    composition: Composition
    baseline: dict[str, Report] = field(default_factory=dict)
    composed: dict[str, Report] = field(default_factory=dict)
    footprint: dict[str, dict[str, float]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    task: UnlearnTask | None = None


def resolve(recipe: Recipe, registry: Registry | None = None) -> Composition:
    """Check a recipe completely (names, configs, compatibility) without touching a model."""
    registry = registry or get_registry()
    resolved = []
    for kind, step in recipe.steps():
        entry = registry.get(kind, step.name)
        resolved.append(Resolved(kind, step, entry, entry.cls(step.options)))
    comp = Composition(recipe, resolved)
    check_compatible(comp)
    return comp


def check_compatible(comp: Composition) -> None:
    names = [r.entry.name for r in comp.of("evaluator")]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise IncompatibleError(f"evaluator(s) {', '.join(sorted(dupes))} requested twice")
    for r in comp.resolved:
        # a method may declare what it cannot be combined with: {"quantizer": {"flatquant"}} or {"quantizer": "*"}
        for kind, names_ in getattr(r.method, "incompatible", {}).items():
            for other in comp.of(kind):
                if names_ == "*" or other.entry.name in names_:
                    raise IncompatibleError(f"{r.kind} {r.entry.name!r} cannot be combined with "
                                            f"{kind} {other.entry.name!r}")
    if comp.recipe.task.source == "authors" and comp.recipe.task.forget_percent not in (1, 5, 10):
        raise ConfigError(f"task.forget_percent: must be 1, 5 or 10 (got {comp.recipe.task.forget_percent})")


def unlearn_task(spec: TaskSpec) -> UnlearnTask:
    if spec.source == "authors":
        from .data.examples import authors_task

        return authors_task(spec.forget_percent)
    path = Path(spec.source)
    if not path.is_file():
        raise DataError(f"task.source: {spec.source!r} is neither 'authors' nor a JSONL file")
    forget, retain = [], []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ex = Example(str(row["prompt"]), str(row["answer"]))
            (forget if row.get("split", "forget") == "forget" else retain).append(ex)
        except (json.JSONDecodeError, KeyError) as err:
            raise DataError(f"{path}:{i + 1}: expected JSON with prompt, answer, split ({err})") from None
    if not forget:
        raise DataError(f"{path}: the forget set is empty")
    return UnlearnTask(forget=forget, retain=retain, name=path.stem)


def calibration_windows(lm: LanguageModel, recipe: Recipe) -> torch.Tensor:
    """Random windows (fixed seed) of the calibration corpus: N×T token ids."""
    spec = recipe.calibration
    corpus = default_calibration_corpus(lm.source) if spec.corpus == "auto" else spec.corpus
    ids = lm.encode(load_corpus(corpus))
    if len(ids) < spec.seq_len + 1:
        raise DataError(f"calibration corpus {corpus!r} has {len(ids)} tokens, fewer than one "
                        f"sequence of {spec.seq_len}")
    rng = random.Random(spec.seed)
    starts = [rng.randrange(0, len(ids) - spec.seq_len) for _ in range(spec.samples)]
    return torch.tensor([ids[s:s + spec.seq_len] for s in starts], dtype=torch.long, device=lm.model.device)


def heal(lm: LanguageModel, recipe: Recipe) -> None:
    spec = recipe.train
    assert spec is not None
    corpus = default_train_corpus(lm.source) if spec.corpus == "auto" else spec.corpus
    docs = load_corpus(corpus).split("\n\n")
    if spec.init == "scratch":
        reinitialize(lm.model, recipe.seed)
    data = pack(docs, lm.tokenizer, spec.seq_len)
    train(lm.model, data, TrainConfig(steps=spec.steps, lr=spec.lr, batch_size=spec.batch_size,
                                      optimizer=spec.optimizer, seed=recipe.seed), description="training")


def reinitialize(model: torch.nn.Module, seed: int) -> None:
    """Fresh weights for training from scratch: N(0, 0.02) linears/embeddings, modules' own init else.

    Modules' own ``reset_parameters`` run after the generic pass, so a method module that
    initialises the linears it contains (e.g. KAT's variance-preserving init) keeps its init.
    """
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                torch.nn.init.zeros_(m.bias)
    for m in model.modules():
        if m is not model and not isinstance(m, (torch.nn.Linear, torch.nn.Embedding)) \
                and hasattr(m, "reset_parameters"):
            m.reset_parameters()


def apply_structure(lm: LanguageModel, comp: Composition) -> None:
    """The swaps that change the model's structure, without data: used by compose and by load."""
    for r in comp.of("attention"):
        install_attention(lm.model, r.method)  # type: ignore[arg-type]
    for r in comp.of("activation"):
        install_activation(lm.model, r.method)  # type: ignore[arg-type]


def evaluate_all(lm: LanguageModel, comp: Composition, ctx: EvalContext) -> dict[str, Report]:
    return {r.entry.name: r.method.evaluate(lm, ctx) for r in comp.of("evaluator")}  # type: ignore[attr-defined]


def compose(recipe: Recipe, registry: Registry | None = None, lm: LanguageModel | None = None,
            baseline: bool = True, log=lambda msg: None) -> ComposeResult:
    comp = resolve(recipe, registry)
    torch.manual_seed(recipe.seed)
    timings: dict[str, float] = {}

    def timed(name: str, fn):
        log(name)
        t = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t, 3)
        return out

    base = lm if lm is not None else timed("load", lambda: load(recipe.model))
    task = unlearn_task(recipe.task) if comp.one("unlearner") else None  # data errors before any work
    calib = None
    if comp.one("quantizer") or any(type(r.method).calibrate is not AttentionMethod.calibrate
                                    for r in comp.of("attention")):
        calib = calibration_windows(base, recipe)
    result = ComposeResult(lm=base, composition=comp, timings=timings, task=task)
    ctx = EvalContext(base=base, task=task, seed=recipe.seed)
    if baseline:
        result.baseline = timed("evaluate baseline", lambda: evaluate_all(base, comp, ctx))
        result.footprint["baseline"] = footprint(base.model)
    lm_ = base.clone()
    timed("architecture", lambda: apply_structure(lm_, comp))
    for r in comp.of("attention"):
        if calib is not None:
            timed(f"calibrate {r.entry.name}", lambda: r.method.calibrate(lm_, calib))  # type: ignore[attr-defined]
    if recipe.train is not None:
        timed("train", lambda: heal(lm_, recipe))
    un = comp.one("unlearner")
    if un is not None and task is not None:
        task.reference = base.clone()
        task.reference.model.requires_grad_(False)
        lm_ = timed(f"unlearn {un.entry.name}", lambda: un.method.unlearn(lm_, task))  # type: ignore[attr-defined]
        task.reference = None  # not kept alive past unlearning
    q = comp.one("quantizer")
    if q is not None:
        timed(f"quantize {q.entry.name}", lambda: q.method.quantize(lm_, calib))  # type: ignore[attr-defined]
    lm_.model.eval()
    result.lm = lm_
    result.composed = timed("evaluate composed", lambda: evaluate_all(lm_, comp, ctx))
    result.footprint["composed"] = footprint(lm_.model)
    return result


def default_corpus_note(source: str) -> str:
    return f"evaluation corpus: {default_eval_corpus(source)}; calibration: {default_calibration_corpus(source)}"
