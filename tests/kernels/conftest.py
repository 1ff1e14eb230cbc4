"""Kernel tests run anywhere: without a GPU, Triton kernels run in Triton's interpreter on CPU.

Triton reads TRITON_INTERPRET when it decorates a function: its own library at ``import triton``
(so it is imported here, with the variable set, before any test module imports it) and splice's
kernels at their lazy first use (inside these tests). The variable itself is then set per test
only, so test folders that run in the same session keep dispatching to the fast references on CPU.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest
import torch

HAS_TRITON = importlib.util.find_spec("triton") is not None

if HAS_TRITON and not torch.cuda.is_available():
    _previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    import triton  # noqa: F401  (decorates triton.language's @jit helpers for the interpreter)

    if _previous is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _previous


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "triton: needs the triton package (GPU or interpreter)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without triton installed, skip what exercises a Triton backend instead of failing."""
    if HAS_TRITON:
        return
    skip = pytest.mark.skip(reason="triton is not installed")
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.get_closest_marker("triton") or params.get("backend") == "triton":
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def kernel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SPLICE_KERNELS", raising=False)
    if not torch.cuda.is_available():
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the interpreter is numpy-bound; extra threads only contend
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
