"""A correctness test for any registered kernel backend, for free.

Every op declares ``samples(device)``; ``check_backend`` runs the backend and the reference on each
sample, compares outputs with the op's per-dtype tolerances and, for differentiable ops, compares
the gradients of every input created with ``requires_grad=True``. In a plugin's tests::

    import pytest
    from splice.kernels.testing import backend_params, check_backend

    @pytest.mark.parametrize("op,backend", backend_params(["my_op"]))
    def test_my_kernel(op, backend):
        check_backend(op, backend)

On a machine without CUDA, Triton backends run under Triton's interpreter on CPU tensors; the
check switches ``TRITON_INTERPRET=1`` on for its own duration (register Triton backends with a
lazy "module:function" target so their kernels are decorated under that setting).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .dispatch import REFERENCE, Op, get_op, ops
from .errors import BackendUnavailable
from .sample import Sample, Tolerance, tolerance_for


@dataclass
class CheckResult:
    """How far one backend is from the reference on one sample."""

    op: str
    backend: str
    label: str
    max_abs_err: float
    mismatches: int
    numel: int
    grad_max_abs_err: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max([self.max_abs_err, *self.grad_max_abs_err.values()])


@contextlib.contextmanager
def triton_interpreter(device: torch.device | str = "cpu") -> Iterator[None]:
    """TRITON_INTERPRET=1 for CPU devices, restored afterwards; a no-op for CUDA devices."""
    if torch.device(device).type != "cpu" or os.environ.get("TRITON_INTERPRET") == "1":
        yield
        return
    previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = previous


def import_triton_interpreted() -> None:
    """Import Triton with its interpreter on when there is no CUDA device, then restore the variable.

    Triton reads ``TRITON_INTERPRET`` when it is first imported (it decorates its own library then),
    so a test session on CPU must import it under the interpreter before any plugin imports it
    compiled. Call this from a plugin's ``tests/conftest.py``; kernel tests then switch the
    interpreter on only for their own duration (``check_backend``), and model tests keep the
    PyTorch references. A no-op when Triton is not installed or CUDA is available.
    """
    import importlib.util

    if importlib.util.find_spec("triton") is None or torch.cuda.is_available():
        return
    with triton_interpreter("cpu"):
        import triton  # noqa: F401


def default_device(op: Op, backend: str) -> torch.device:
    """CUDA when there is one and the backend runs there, else CPU (Triton via its interpreter)."""
    if torch.cuda.is_available() and op.backend(backend).unavailable_on(torch.device("cuda")) is None:
        return torch.device("cuda")
    return torch.device("cpu")


def backend_params(op_names: Sequence[str] | None = None, *, include_reference: bool = False) -> list[tuple[str, str]]:
    """(op, backend) pairs to parametrize a test over: every accelerated backend of every op (or
    of ``op_names``). Availability is checked inside ``check_backend``, not at collection."""
    chosen = ops() if op_names is None else [get_op(name) for name in op_names]
    return [
        (op.name, name)
        for op in chosen
        for name in op.backends
        if include_reference or name != REFERENCE
    ]


def check_backend(
    op_name: str,
    backend: str,
    cases: Iterable[Sample] | None = None,
    *,
    device: torch.device | str | None = None,
    grads: bool = True,
    skip_unavailable: bool = False,
) -> list[CheckResult]:
    """Compare ``backend`` with the op's reference on ``cases`` (default: the op's own samples).

    Raises AssertionError naming the sample and the error when they disagree beyond tolerance,
    BackendUnavailable when the backend cannot run here (``pytest.skip`` instead with
    ``skip_unavailable=True``). Returns one CheckResult per sample.
    """
    op = get_op(op_name)
    chosen = op.backend(backend)
    dev = torch.device(device) if device is not None else default_device(op, backend)
    with triton_interpreter(dev):
        reason = chosen.unavailable_on(dev)
        if reason is not None:
            if skip_unavailable:
                import pytest

                pytest.skip(f"{op_name}/{backend} on {dev}: {reason}")
            raise BackendUnavailable(f"kernel op {op_name!r}: backend {backend!r} cannot run on {dev}: {reason}")
        samples = list(cases) if cases is not None else list(op.samples(dev))
        if not samples:
            raise AssertionError(f"kernel op {op_name!r} declares no samples to check {backend!r} on")
        return [_check_one(op, backend, sample, grads and op.differentiable) for sample in samples]


def _check_one(op: Op, backend: str, sample: Sample, grads: bool) -> CheckResult:
    where = f"{op.name}/{backend} [{sample.label or 'sample'}]"
    ref_args, ref_kwargs, ref_leaves = _clone_inputs(sample)
    bk_args, bk_kwargs, bk_leaves = _clone_inputs(sample)
    with torch.enable_grad() if grads else torch.no_grad():
        expected = _tensors(op.reference(*ref_args, **ref_kwargs))
        try:
            actual = _tensors(op.run(backend, *bk_args, **bk_kwargs))
        except BackendUnavailable as exc:
            raise AssertionError(f"{where}: the backend refused its op's own sample: {exc}") from exc
    if len(actual) != len(expected):
        raise AssertionError(f"{where}: {len(actual)} outputs, reference gives {len(expected)}")
    max_err, mismatches, numel = 0.0, 0, 0
    for i, (a, e) in enumerate(zip(actual, expected)):
        err, bad = _compare(a, e, tolerance_for(op.tol, e.dtype), op.mismatch_budget, f"{where} output {i}")
        max_err, mismatches, numel = max(max_err, err), mismatches + bad, numel + e.numel()
    result = CheckResult(op.name, backend, sample.label, max_err, mismatches, numel)
    if not grads or not ref_leaves:
        return result
    pairs = [(a, e) for a, e in zip(actual, expected) if a.requires_grad and e.requires_grad]
    if not pairs:
        raise AssertionError(f"{where}: inputs require grad but the backend's outputs do not")
    gen = torch.Generator().manual_seed(0)
    cotangents = [torch.randn(e.shape, generator=gen).to(e.device, e.dtype) for _, e in pairs]
    ref_grads = torch.autograd.grad([e for _, e in pairs], list(ref_leaves.values()), cotangents, allow_unused=True)
    bk_grads = torch.autograd.grad([a for a, _ in pairs], list(bk_leaves.values()), cotangents, allow_unused=True)
    for (name, leaf), gr, gb in zip(ref_leaves.items(), ref_grads, bk_grads):
        gr = torch.zeros_like(leaf) if gr is None else gr
        gb = torch.zeros_like(leaf) if gb is None else gb
        err, _ = _compare(gb, gr, tolerance_for(op.grad_tol, leaf.dtype), op.mismatch_budget, f"{where} grad {name}")
        result.grad_max_abs_err[name] = err
    return result


def _clone_inputs(sample: Sample) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, torch.Tensor]]:
    leaves: dict[str, torch.Tensor] = {}

    def clone(value: Any, name: str) -> Any:
        if isinstance(value, torch.Tensor):
            copy = value.detach().clone().requires_grad_(value.requires_grad)
            if copy.requires_grad:
                leaves[name] = copy
            return copy
        if isinstance(value, (list, tuple)):
            return type(value)(clone(v, f"{name}[{i}]") for i, v in enumerate(value))
        return value

    args = tuple(clone(v, f"arg{i}") for i, v in enumerate(sample.args))
    kwargs = {k: clone(v, k) for k, v in sample.kwargs.items()}
    return args, kwargs, leaves


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(item)]
    if out is None:
        return []
    raise AssertionError(f"kernel ops return tensors or tuples of tensors, got {type(out).__name__}")


def _compare(actual: torch.Tensor, expected: torch.Tensor, tol: Tolerance, budget: float, what: str) -> tuple[float, int]:
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {tuple(actual.shape)}, reference {tuple(expected.shape)}")
    if actual.dtype != expected.dtype:
        raise AssertionError(f"{what}: dtype {actual.dtype}, reference {expected.dtype}")
    if actual.numel() == 0:
        return 0.0, 0
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    same_special = (a == e) | (a.isnan() & e.isnan())  # equal infinities and NaNs agree
    diff = torch.where(same_special, torch.zeros_like(a), (a - e).abs())
    diff = torch.nan_to_num(diff, nan=math.inf)
    bad = diff > tol.atol + tol.rtol * e.abs().nan_to_num(posinf=0.0, neginf=0.0)
    n_bad = int(bad.sum())
    allowed = int(budget * a.numel())
    if n_bad > allowed:
        idx = int(torch.argmax(torch.where(bad, diff, torch.zeros_like(diff))))
        raise AssertionError(
            f"{what}: {n_bad}/{a.numel()} elements outside rtol={tol.rtol}, atol={tol.atol} "
            f"(allowed {allowed}); worst at flat index {idx}: {a.flatten()[idx].item():.6g} vs "
            f"reference {e.flatten()[idx].item():.6g}; max abs error {float(diff.max()):.3g}"
        )
    return float(diff.max()), n_bad
