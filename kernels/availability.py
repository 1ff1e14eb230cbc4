"""Can an accelerated backend run on a device here? Each check returns None when it can, or the
reason it cannot (shown by ``splice kernels`` and in forced-backend errors)."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys

import torch


def interpreter_enabled() -> bool:
    """TRITON_INTERPRET=1: Triton kernels run in its numpy interpreter, on CPU tensors.

    Triton reads the variable when a function is *decorated*: its own library (tl.zeros,
    tl.sigmoid, ...) at ``import triton``, each kernel at its module's import. Kernel modules are
    therefore imported lazily (``register_backend`` with a "module:function" target), and the
    variable must be set before anything imports triton (see ``interpreter_problem``).
    """
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


@functools.cache
def _stdlib_compiled() -> bool:
    """Whether triton was imported outside interpreter mode (its @jit library compiled)."""
    from triton.language import standard
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    probe = getattr(standard, "zeros", None)
    return isinstance(probe, JITFunction) and not isinstance(probe, InterpretedFunction)


def interpreter_problem() -> str | None:
    """None if Triton kernels can run in the interpreter now, else why not."""
    if not interpreter_enabled():
        return "tensors are on cpu and TRITON_INTERPRET is not 1 (Triton compiles for CUDA devices only)"
    if "triton" in sys.modules and _stdlib_compiled():
        return ("triton was imported before TRITON_INTERPRET=1 was set, so its library is compiled "
                "for GPUs; set the variable before anything imports triton (e.g. at the top of conftest.py)")
    return None


@functools.cache
def _triton_import_problem() -> str | None:
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install triton)"
    try:
        import triton  # noqa: F401
    except Exception as exc:  # noqa: BLE001  (a broken install must not break dispatch; it is reported)
        return f"triton fails to import: {exc.__class__.__name__}: {exc}"
    return None


def triton_available(device: torch.device | str) -> str | None:
    """Triton runs compiled on CUDA devices, and on CPU only under TRITON_INTERPRET=1."""
    device = torch.device(device)
    # Device checks first: on a plain CPU run, triton (slow to import) is never imported.
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device is visible"
    elif device.type != "cpu":
        return f"Triton does not support {device.type} tensors"
    elif not interpreter_enabled():
        return interpreter_problem()
    return _triton_import_problem() or (interpreter_problem() if device.type == "cpu" else None)


def cuda_available(device: torch.device | str) -> str | None:
    """For CUDA-extension backends (torch.utils.cpp_extension)."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"tensors are on {device.type}; this backend needs CUDA tensors"
    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    return None


def local_device() -> torch.device:
    """The device an op would most likely run on here, for listings without inputs."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
