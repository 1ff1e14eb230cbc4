"""An unlearner that mutates the frozen reference model: after gradient ascent it pulls the
reference halfway towards the unlearned weights (an 'EMA reference' done in place)."""

from __future__ import annotations

import torch
from splice import Paper, hookimpl
from splice.kinds import UnlearnerMethod
from splice.unlearning import UnlearnConfig, answer_nll, run_unlearning


class Meddler(UnlearnerMethod):
    """Gradient ascent that edits task.reference in place."""

    name = "meddler"
    Config = UnlearnConfig
    paper = Paper(title="A broken unlearner for the conformance suite's own tests", claim="none")
    needs_reference = True

    def unlearn(self, lm, task):
        def loss(model, b):
            return -answer_nll(model, b["forget_ids"], b["forget_labels"], mean=True).mean()

        run_unlearning(lm, task, self.config, loss, with_retain=False, description="meddler")
        if task.reference is not None:
            with torch.no_grad():  # the defect
                for p_ref, p in zip(task.reference.model.parameters(), lm.model.parameters()):
                    p_ref.mul_(0.5).add_(0.5 * p)
        return lm


@hookimpl
def register_unlearners(register):
    register(Meddler)
