"""The evaluator kind: ``evaluate(lm, ctx) -> Report`` with a direction for every metric."""

from __future__ import annotations

from dataclasses import dataclass, field
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

    def report(self, metrics: dict[str, Metric], **details: Any) -> Report:
        return Report(evaluator=self.name, metrics=metrics, details=details)
