"""Shared set-up for the QuaRot tests: quiet progress bars, one thread per xdist worker, ``tiny``."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("SPLICE_NO_PROGRESS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny():
    """The embedded model, loaded once (tests clone it before changing anything)."""
    from splice.model import load

    return load("tiny")
