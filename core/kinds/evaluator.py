"""The evaluator kind: ``evaluate(lm, ctx) -> Report`` with a direction for every metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from ..method import Method


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float
    direction: Literal["higher", "lower", "none"]  # which way is better ("none": informational)
    description: str = ""
    timing: bool = False  # wall-clock figures are reported but never expected to reproduce exactly


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evaluator: str
    metrics: dict[str, Metric]
    details: dict[str, Any] = {}


@dataclass
class EvalContext:
    """What an evaluation may need besides the model under test."""

    base: Any = None  # the model before composition (a LanguageModel), if any
    task: Any = None  # the composition's UnlearnTask, if any
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class EvaluatorMethod(Method):
    kind: ClassVar[str] = "evaluator"

    def evaluate(self, lm, ctx: EvalContext) -> Report:
        raise NotImplementedError

    @classmethod
    def empty_data_config(cls, workdir: Path) -> dict[str, Any] | None:
        """Config values that leave the evaluator nothing to score (e.g. an empty corpus file it
        writes under ``workdir``), for the conformance suite: ``evaluate`` must then raise a
        DataError (the suite also passes an empty ``ctx.task``). None: its data cannot be empty."""
        return None

    def report(self, metrics: dict[str, Metric], **details: Any) -> Report:
        return Report(evaluator=self.name, metrics=metrics, details=details)
