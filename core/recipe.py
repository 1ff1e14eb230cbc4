"""A composition request: the same thing as the CLI flags, or a TOML recipe file.

    model = "tiny"
    seed = 0
    [attn]
    name = "squeezed"
    budget = 0.25
    [quant]
    name = "rtn"
    w_bits = 4
    [[eval]]
    name = "perplexity"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .method import format_validation_error

# The fixed order in which a composition is applied (docs/guide.md explains why).
ORDER = ("attention", "activation", "train", "unlearner", "quantizer", "evaluator")
STEP_FIELDS = {"attn": "attention", "act": "activation", "unlearn": "unlearner", "quant": "quantizer"}


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        """TOML tables hold options beside the name: {name = "rtn", w_bits = 4}."""
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and "options" not in data:
            data = dict(data)
            name = data.pop("name", None)
            return {"name": name, "options": data}
        return data


class TrainSpec(BaseModel):
    """Optional training/healing after architecture swaps (the training loop's config + corpus)."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(200, gt=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(8, gt=0)
    seq_len: int = Field(256, gt=1)
    corpus: str = Field("auto", description="auto: tiny-train for the embedded model, tinyshakespeare otherwise")
    optimizer: str = "adamw"
    init: Literal["pretrained", "scratch"] = Field("pretrained", description="scratch: train the architecture "
                                                                             "from freshly initialised weights")


class TaskSpec(BaseModel):
    """Where an unlearner's forget/retain data come from."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field("authors", description="'authors' (the fictitious authors) or a JSONL file with "
                                                "prompt, answer, split (forget|retain) fields")
    forget_percent: int = Field(10, description="for 'authors': 1, 5 or 10 (TOFU's splits)")


class CalibrationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corpus: str = Field("auto", description="auto: tiny-calib for the embedded model, tinyshakespeare otherwise")
    samples: int = Field(32, gt=0)
    seq_len: int = Field(256, gt=1)
    seed: int = 0


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str = "tiny"
    seed: int = 0
    attn: Step | None = None
    act: Step | None = None
    train: TrainSpec | None = None
    unlearn: Step | None = None
    task: TaskSpec = TaskSpec()
    quant: Step | None = None
    calibration: CalibrationSpec = CalibrationSpec()
    evals: list[Step] = Field(default_factory=lambda: [Step(name="perplexity")], alias="eval")

    @classmethod
    def from_toml(cls, path: str | Path) -> "Recipe":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"recipe {path}: no such file") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"recipe {path}: not valid TOML: {err}") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: dict[str, Any], owner: str = "recipe") -> "Recipe":
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(format_validation_error(owner, err)) from None

    def steps(self) -> list[tuple[str, Step]]:
        """(kind, step) in the order of application."""
        out = [(STEP_FIELDS[f], getattr(self, f)) for f in ("attn", "act", "unlearn", "quant")
               if getattr(self, f) is not None]
        out += [("evaluator", s) for s in self.evals]
        return sorted(out, key=lambda ks: ORDER.index(ks[0]))

    def to_toml_dict(self) -> dict[str, Any]:
        d = self.model_dump(by_alias=True, exclude_none=True)
        for f in ("attn", "act", "unlearn", "quant"):
            if f in d:
                d[f] = {"name": d[f]["name"], **d[f]["options"]}
        d["eval"] = [{"name": s["name"], **s["options"]} for s in d["eval"]]
        return d
