"""splice-plugin-tofu: the TOFU-style fictitious-authors benchmark (data, fine-tuned models, metrics)."""

from .data import eval_sets, forget_qa, full_qa, retain_eval_qa, retain_qa
from .evaluator import Tofu, TofuConfig
from .metrics import SetResult, evaluate_all, forget_quality, model_utility
from .models import finetuned, retain_model_for
from .rouge import rouge_l

__all__ = ["SetResult", "Tofu", "TofuConfig", "eval_sets", "evaluate_all", "finetuned", "forget_qa",
           "forget_quality", "full_qa", "model_utility", "retain_eval_qa", "retain_model_for", "retain_qa",
           "rouge_l"]
