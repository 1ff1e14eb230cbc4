"""What every method class has, whatever its kind: a name, a paper, and a validated config."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

KINDS = ("attention", "activation", "quantizer", "unlearner", "evaluator", "model")


class Paper(BaseModel):
    """The publication a method comes from and the claim splice reproduces from it."""

    model_config = ConfigDict(frozen=True)

    title: str
    arxiv: str | None = None
    claim: str = ""
    url: str | None = None


class MethodConfig(BaseModel):
    """Base of every method config: unknown fields are errors, assignments are validated.

    Defaults are the paper's defaults; a field's description says what it is.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NoConfig(MethodConfig):
    """For methods with nothing to configure."""


def format_validation_error(owner: str, err: ValidationError) -> str:
    """One line per bad field: ``owner: field: problem (got value)``."""
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(config)"
        got = e.get("input")
        got_s = "" if isinstance(got, Mapping) else f" (got {got!r})"
        lines.append(f"{owner}: {field}: {e['msg']}{got_s}")
    return "; ".join(lines)


def parse_option_value(raw: str) -> Any:
    """``--quant-opt w_bits=4``: values are JSON when they parse as JSON, else plain strings."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, ValueError):
        return raw


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``["w_bits=4", "group_size=64"]`` into a dict, with a clear error on malformed pairs."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option {pair!r} is not of the form key=value")
        out[key.strip()] = parse_option_value(value.strip())
    return out


class Method:
    """Base of every method class. Subclasses set ``kind``, ``name``, ``Config`` and ``paper``."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = NoConfig
    paper: ClassVar[Paper | None] = None
    #: Config overrides the conformance suite (splice.testing) runs the method with, so each check
    #: takes seconds on the embedded model (fewer calibration epochs, fewer windows...). They must
    #: keep the method's mechanism intact: the suite checks the method, not a stand-in.
    conformance_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: MethodConfig | Mapping[str, Any] | None = None) -> None:
        self.config = self.make_config(config)

    @classmethod
    def make_config(cls, config: MethodConfig | Mapping[str, Any] | None = None) -> MethodConfig:
        """Validate ``config`` against ``Config``; a bad value raises ConfigError naming the field."""
        if isinstance(config, cls.Config):
            return config
        if isinstance(config, BaseModel):
            config = config.model_dump()
        try:
            return cls.Config(**dict(config or {}))
        except ValidationError as err:
            raise ConfigError(format_validation_error(cls.name or cls.__name__, err)) from None

    @classmethod
    def describe(cls) -> str:
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
