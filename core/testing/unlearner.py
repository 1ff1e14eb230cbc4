"""Unlearner checks: the reference model is left alone, the forget loss rises while the retain loss
stays within RETAIN_TOLERANCE, an empty forget set is a clear error."""

from __future__ import annotations

import torch

from ..data.examples import encode_examples
from ..errors import SpliceError
from ..kinds.unlearner import Example, UnlearnTask
from ..model import LanguageModel
from ..unlearning import answer_nll
from .base import CheckFailed, Subject, check
from .fixtures import (
    FORGET_MIN_RISE,
    RETAIN_TOLERANCE,
    SEED,
    changed_tensors,
    state_snapshot,
    tiny,
    unlearn_task,
)
from .runs import frozen_reference


@torch.no_grad()
def mean_answer_nll(lm: LanguageModel, examples: list[Example]) -> float:
    """Mean over examples of the per-token answer NLL (nats), the measure the tolerances are in."""
    enc = encode_examples(lm, examples)
    ids = torch.stack([e["input_ids"] for e in enc])
    labels = torch.stack([e["labels"] for e in enc])
    lm.model.eval()
    return float(answer_nll(lm.model, ids.to(lm.model.device), labels.to(lm.model.device), mean=True).mean())


def unlearned(s: Subject, lm: LanguageModel, task: UnlearnTask) -> LanguageModel:
    torch.manual_seed(SEED)
    out = s.method().unlearn(lm, task)
    return out if isinstance(out, LanguageModel) else lm


@check("unlearner", "reference_untouched", "leaves the frozen reference model (task.reference) untouched")
def reference_untouched(s: Subject) -> str:
    ref = frozen_reference()
    before = state_snapshot(ref.model)
    unlearned(s, tiny(), unlearn_task(reference=ref))
    changed = changed_tensors(before, ref.model)
    if changed:
        raise CheckFailed(f"unlearning changed the reference model: {', '.join(changed[:4])}"
                          + (f" and {len(changed) - 4} more" if len(changed) > 4 else ""))
    return f"{len(before)} reference tensors unchanged"


@check("unlearner", "forgets", f"raises the forget-set answer NLL (by > {FORGET_MIN_RISE}) and keeps the retain "
       f"set's within +{RETAIN_TOLERANCE} nats (tiny, forget 1 author)")
def forgets(s: Subject) -> str:
    task = unlearn_task(reference=frozen_reference())
    lm = tiny()
    f0, r0 = mean_answer_nll(lm, task.forget), mean_answer_nll(lm, task.retain)
    out = unlearned(s, lm, task)
    f1, r1 = mean_answer_nll(out, task.forget), mean_answer_nll(out, task.retain)
    shown = (f"forget NLL {f0:.3f} -> {f1:.3f}, retain NLL {r0:.3f} -> {r1:.3f} "
             f"(options {s.options() or 'defaults'})")
    if not f1 - f0 > FORGET_MIN_RISE:
        raise CheckFailed(f"the forget set's loss does not rise by more than {FORGET_MIN_RISE}: {shown}")
    if r1 - r0 > RETAIN_TOLERANCE:
        raise CheckFailed(f"the retain set's loss rises by more than the tolerance {RETAIN_TOLERANCE}: {shown}")
    return shown


@check("unlearner", "empty_forget", "an empty forget set is a clear error, raised before the model is touched")
def empty_forget(s: Subject) -> str:
    lm = tiny()
    before = state_snapshot(lm.model)
    task = unlearn_task(reference=frozen_reference())
    task.forget = []
    try:
        unlearned(s, lm, task)
    except SpliceError as err:
        if "forget" not in str(err).lower():
            raise CheckFailed(f"the error does not say the forget set is the problem: {err}") from None
        msg = str(err)
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"an empty forget set raises {type(err).__name__} ({err}), not a splice.DataError") from None
    else:
        raise CheckFailed("an empty forget set is accepted silently")
    if changed_tensors(before, lm.model):
        raise CheckFailed("the model was modified before the empty forget set was refused")
    return f"DataError: {msg}"
