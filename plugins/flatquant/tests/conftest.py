"""Shared set-up for the FlatQuant tests.

Triton decides at ``import triton`` whether its own library runs in the interpreter, so it is
imported here, with TRITON_INTERPRET=1 (no CUDA), before any test module or plugin can import it
compiled; the variable is then put back. Kernel tests switch the interpreter on only for their own
duration (``splice.kernels.testing.check_backend``), so model tests keep the PyTorch references.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

os.environ.setdefault("SPLICE_NO_PROGRESS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

if importlib.util.find_spec("triton") is not None and not torch.cuda.is_available():
    _before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    import triton  # noqa: F401

    if _before is None:
        os.environ.pop("TRITON_INTERPRET")
    else:
        os.environ["TRITON_INTERPRET"] = _before


@pytest.fixture(scope="session")
def tiny():
    """The embedded model, loaded once (tests clone it before changing anything)."""
    from splice.model import load

    return load("tiny")
