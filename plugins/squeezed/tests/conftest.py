"""Triton reads TRITON_INTERPRET when it is imported (its own library) and when a kernel is first
decorated: import it here under the interpreter, before any test or plugin imports it, so the
kernel tests can run the Triton backends on CPU (as tests/kernels/conftest.py does)."""

from __future__ import annotations

import importlib.util
import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
os.environ.setdefault("SPLICE_NO_PROGRESS", "1")

if importlib.util.find_spec("triton") is not None and not torch.cuda.is_available():
    _previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    import triton  # noqa: F401

    if _previous is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _previous
