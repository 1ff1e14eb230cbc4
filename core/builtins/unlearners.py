"""``ga`` and ``graddiff``: the gradient-ascent baselines of the unlearning literature."""

from __future__ import annotations

from pydantic import Field

from ..kinds.unlearner import UnlearnerMethod, UnlearnTask
from ..method import Paper
from ..unlearning import UnlearnConfig, answer_nll, run_unlearning


class GradientAscent(UnlearnerMethod):
    """Gradient ascent on the forget set's answer NLL (unbounded: it collapses the model)."""

    name = "ga"
    Config = UnlearnConfig
    paper = Paper(title="Knowledge Unlearning for Mitigating Privacy Risks in Language Models",
                  arxiv="2210.01504", claim="the GA baseline: forgets, then collapses")

    def unlearn(self, lm, task: UnlearnTask):
        def loss(model, b):
            return -answer_nll(model, b["forget_ids"], b["forget_labels"], mean=True).mean()

        self.history = run_unlearning(lm, task, self.config, loss, with_retain=False, description="ga")
        return lm


class GradDiffConfig(UnlearnConfig):
    retain_weight: float = Field(1.0, ge=0, description="weight of the retain NLL term")


class GradDiff(UnlearnerMethod):
    """Gradient difference: ascend the forget NLL, descend the retain NLL."""

    name = "graddiff"
    Config = GradDiffConfig
    paper = Paper(title="Large Language Model Unlearning (GradDiff as used by TOFU)", arxiv="2310.10683",
                  claim="the GA+retain baseline")

    def unlearn(self, lm, task: UnlearnTask):
        w = self.config.retain_weight

        def loss(model, b):
            f = answer_nll(model, b["forget_ids"], b["forget_labels"], mean=True).mean()
            r = answer_nll(model, b["retain_ids"], b["retain_labels"], mean=True).mean()
            return -f + w * r, {"forget_nll": f.detach(), "retain_nll": r.detach()}

        self.history = run_unlearning(lm, task, self.config, loss, with_retain=True, description="graddiff")
        return lm
