"""Fixtures of this plugin's tests: the embedded model, loaded once per session."""

from __future__ import annotations

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
os.environ.setdefault("SPLICE_NO_PROGRESS", "1")


@pytest.fixture(scope="session")
def tiny():
    """The embedded model (tests must not modify it; clone it first)."""
    from splice.model import load

    lm = load("tiny")
    lm.model.eval()
    return lm
