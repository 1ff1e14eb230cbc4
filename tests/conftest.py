"""Shared fixtures: the embedded model, small random checkpoints, the shared data folder."""

from __future__ import annotations

import os

import pytest
import torch

from splice.data.corpora import shared_data_dir

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # two workers on two cores: no oversubscription
os.environ.setdefault("SPLICE_NO_PROGRESS", "1")


@pytest.fixture(scope="session")
def tiny():
    """The embedded model (loaded once per test session; tests must not modify it)."""
    from splice.model import load

    return load("tiny")


@pytest.fixture()
def tiny_copy(tiny):
    """A private copy of the embedded model that a test may modify."""
    return tiny.clone()


@pytest.fixture(scope="session")
def shared_data():
    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared/data is absent (set SPLICE_DATA to the shared data folder)")
    return root
