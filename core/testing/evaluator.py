"""Evaluator checks: the report validates against its schema with a direction per metric; bad
inputs (empty data, a wrong model type) are clear errors."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from ..errors import SpliceError
from ..kinds.evaluator import EvalContext, Report
from ..kinds.unlearner import UnlearnTask
from .base import CheckFailed, Subject, check
from .fixtures import SEED, tiny, unlearn_task


def context() -> EvalContext:
    return EvalContext(base=tiny(), task=unlearn_task(), seed=SEED)


@check("evaluator", "report", "returns a Report that validates against its schema, names the evaluator, and gives "
       "every metric a direction and a finite value")
def report(s: Subject) -> str:
    rep = s.method().evaluate(tiny(), context())
    if not isinstance(rep, Report):
        raise CheckFailed(f"evaluate() returned {type(rep).__name__}, not splice.kinds.Report")
    try:
        as_json = rep.model_dump_json()  # what an artifact's manifest stores
        again = Report.model_validate_json(as_json)
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"the report does not survive JSON and the Report schema (details must be JSON "
                          f"values): {err}") from None
    if again.metrics != rep.metrics or again.model_dump_json() != as_json:
        raise CheckFailed("the report changes through JSON")
    if rep.evaluator != s.cls.name:
        raise CheckFailed(f"report.evaluator is {rep.evaluator!r}, expected {s.cls.name!r}")
    if not rep.metrics:
        raise CheckFailed("the report has no metrics")
    for name, m in rep.metrics.items():
        if m.direction not in ("higher", "lower", "none"):
            raise CheckFailed(f"metric {name!r} has direction {m.direction!r}")
        if not math.isfinite(m.value):
            raise CheckFailed(f"metric {name!r} is {m.value}")
    if all(m.timing for m in rep.metrics.values()):
        raise CheckFailed("every metric is a timing: nothing reproducible is reported")
    return ", ".join(f"{k} {m.value:.4g} ({m.direction})" for k, m in rep.metrics.items())


@check("evaluator", "bad_inputs", "empty data and a wrong model type raise clear splice errors")
def bad_inputs(s: Subject) -> str:
    lm = tiny()
    notes = []
    for label, bad in (("a bare Decoder instead of a LanguageModel", lm.model), ("a string", "tiny")):
        try:
            s.method().evaluate(bad, context())
        except SpliceError as err:
            notes.append(f"wrong model type: {type(err).__name__}")
            continue
        except Exception as err:  # noqa: BLE001
            raise CheckFailed(f"{label} raises {type(err).__name__} ({err}), not a splice error "
                              "(DataError/ConfigError)") from None
        raise CheckFailed(f"{label} is accepted as the model")
    with tempfile.TemporaryDirectory(prefix="splice-check-") as tmp:
        cfg = s.cls.empty_data_config(Path(tmp)) if hasattr(s.cls, "empty_data_config") else None
        if cfg is None:
            notes.append("empty data: not applicable (the evaluator declares no empty_data_config)")
        else:
            ctx = EvalContext(base=tiny(), task=UnlearnTask(forget=[], retain=[]), seed=SEED)
            try:
                s.method(**cfg).evaluate(lm, ctx)
            except SpliceError as err:
                notes.append(f"empty data ({cfg}): {type(err).__name__}: {err}")
            except Exception as err:  # noqa: BLE001
                raise CheckFailed(f"empty data ({cfg}) raises {type(err).__name__} ({err}), not a splice "
                                  "DataError") from None
            else:
                raise CheckFailed(f"empty data ({cfg}, an empty task) is accepted without an error")
    return "; ".join(notes)
