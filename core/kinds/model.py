"""Model providers: load a source (path, hub id, name) into a LanguageModel."""

from __future__ import annotations

from typing import ClassVar

from ..method import Method


class ModelProvider(Method):
    kind: ClassVar[str] = "model"

    def can_load(self, source: str) -> bool:
        raise NotImplementedError

    def load(self, source: str):
        raise NotImplementedError
