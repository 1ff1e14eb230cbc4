"""The plugin's two kernel ops, defined in ``splice.kernels`` with a PyTorch reference and a Triton
backend each (dispatch picks Triton on CUDA, or on CPU under TRITON_INTERPRET=1)."""

from __future__ import annotations

from typing import Any

import torch
from splice.kernels import Tolerance, UnknownOp, define_op, get_op, register_backend, triton_available

from .reference import centroid_scores_reference, selected_attention_reference, selection_mask
from .samples import centroid_scores_samples, selected_attention_samples

CENTROID_SCORES = "squeezed_centroid_scores"
SELECTED_ATTENTION = "squeezed_selected_attention"
_TRITON = "splice_squeezed.kernels.triton"


def _supports(q: Any, *args: Any, **kwargs: Any) -> str | None:
    if q.shape[-1] > 256:
        return f"head_dim {q.shape[-1]} > 256"
    if q.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return f"dtype {q.dtype} is not float32/float16/bfloat16"
    return None


def _define(name: str, reference, samples, tol, description: str):
    try:
        return get_op(name)  # already defined (the module was imported under another name)
    except UnknownOp:
        return define_op(name, reference, samples=samples, tol=tol, description=description)


centroid_scores = _define(
    CENTROID_SCORES, centroid_scores_reference, centroid_scores_samples,
    {torch.float32: Tolerance(1e-5, 1e-6), torch.bfloat16: Tolerance(2e-2, 2e-3)},
    "Squeezed Attention centroid lookup: size-weighted softmax estimate per cluster, averaged per query group")
selected_attention = _define(
    SELECTED_ATTENTION, selected_attention_reference, selected_attention_samples,
    {torch.float32: Tolerance(2e-5, 2e-5), torch.bfloat16: Tolerance(1.6e-2, 1.6e-2)},
    "attention over selected fixed-context keys (gathered by index) plus all new keys, causal")

register_backend(CENTROID_SCORES, "triton", f"{_TRITON}:centroid_scores_triton", available=triton_available,
                 supports=_supports)
register_backend(SELECTED_ATTENTION, "triton", f"{_TRITON}:selected_attention_triton", available=triton_available,
                 supports=_supports)

__all__ = ["CENTROID_SCORES", "SELECTED_ATTENTION", "centroid_scores", "centroid_scores_reference",
           "selected_attention", "selected_attention_reference", "selection_mask"]
