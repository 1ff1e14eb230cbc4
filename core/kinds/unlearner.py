"""The unlearner kind: ``unlearn(lm, task) -> lm`` removes the forget set's knowledge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..method import Method


@dataclass(frozen=True)
class Example:
    """A prompt and the answer the model should (retain) or should no longer (forget) give."""

    prompt: str
    answer: str


@dataclass
class UnlearnTask:
    forget: list[Example]
    retain: list[Example]
    #: Frozen copy of the model before unlearning (NPO's π_ref, KL terms); set by the pipeline.
    reference: object | None = None
    name: str = "custom"
    meta: dict = field(default_factory=dict)


class UnlearnerMethod(Method):
    kind: ClassVar[str] = "unlearner"
    #: Whether ``task.reference`` is required.
    needs_reference: ClassVar[bool] = False

    def unlearn(self, lm, task: UnlearnTask):
        raise NotImplementedError
